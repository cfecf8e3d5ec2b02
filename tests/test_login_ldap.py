"""Campus sign-in on /orcid against a real OpenLDAP slapd (skipped when slapd is not installed).

Two bind styles: OpenLDAP's DN template, and Active Directory's `username + LDAP_ACCOUNT_SUFFIX`.
OpenLDAP refuses non-DN bind names, so the AD variant goes through `UpnProxy`, a small TCP proxy
in front of slapd that does what AD does with a userPrincipalName: it maps `jdoe@example.edu` to
the user's entry (by rewriting the bind name in the BER-encoded BindRequest). Everything else is
the real directory.
"""

from __future__ import annotations

import socket
import threading

import pytest
from conftest import _reset_tables, free_port, make_app
from ldap3.protocol.rfc4511 import LDAPMessage
from ldap3.strategy.base import BaseStrategy
from ldap_server import PEOPLE_DN, SlapdUnavailable, start_slapd
from pyasn1.codec.ber import decoder, encoder
from sqlalchemy import select
from test_orcid_support import csrf_of, get_page, seed_org_and_position

from ioi.extensions import db
from ioi.models import Message
from ioi.services.people import read_person

PASSWORD = "correct horse"
SUFFIX = "@example.edu"


class UpnProxy:
    """Forwards LDAP traffic to slapd, turning a `name@example.edu` bind into `uid=name,ou=people,...`."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.bind_names: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._upstream, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    def _upstream(self, source: socket.socket, target: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                chunk = source.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                target.close()
                return
            buffer += chunk
            while (size := BaseStrategy.compute_ldap_message_size(buffer)) != -1 and len(buffer) >= size:
                message, buffer = buffer[:size], buffer[size:]
                target.sendall(self._rewrite(message))

    def _rewrite(self, raw: bytes) -> bytes:
        message, _ = decoder.decode(raw, asn1Spec=LDAPMessage())
        op = message["protocolOp"]
        if op.getName() != "bindRequest":
            return raw
        name = str(op["bindRequest"]["name"])
        self.bind_names.append(name)
        if name.endswith(SUFFIX):
            op["bindRequest"]["name"] = f"uid={name.removesuffix(SUFFIX)},{PEOPLE_DN}"
        return encoder.encode(message)

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                chunk = source.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                target.close()
                return
            target.sendall(chunk)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    try:
        server = start_slapd(tmp_path_factory.mktemp("slapd"))
    except SlapdUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def upn_proxy(slapd):
    proxy = UpnProxy(slapd.port)
    yield proxy
    proxy.close()


def ldap_settings(variant: str, slapd, upn_proxy) -> dict:
    if variant == "ad_suffix":
        return {"LDAP_HOSTNAME_SSL": f"ldap://127.0.0.1:{upn_proxy.port}", "LDAP_ACCOUNT_SUFFIX": SUFFIX}
    return {"LDAP_HOSTNAME_SSL": slapd.url, "LDAP_BIND_DN_TEMPLATE": f"uid={{username}},{PEOPLE_DN}"}


@pytest.fixture
def make_site(migrated, smtp_server, slapd, upn_proxy):
    """Builds an app with the given bind style (and extra settings); yields (app, mailbox) factories."""
    port, mailbox = smtp_server
    contexts = []

    def build(variant: str = "dn_template", **extra):
        settings = {"LDAP_BASE_DN": "dc=example,dc=edu", "SMTP_PORT": port, **ldap_settings(variant, slapd, upn_proxy)}
        settings.update(extra)
        app = make_app(migrated, **settings)
        context = app.app_context()
        context.push()
        contexts.append(context)
        _reset_tables()
        return app, mailbox

    yield build
    db.session.remove()
    db.engine.dispose()
    for context in reversed(contexts):
        context.pop()


def sign_in(client, username: str, password: str, next_path: str | None = None):
    page = get_page(client, "/orcid" + (f"?next={next_path}" if next_path else ""))
    form = {"csrf_token": csrf_of(page.data), "username": username, "password": password}
    if next_path is not None:
        form["next"] = next_path
    return client.post("/orcid/login", data=form)


@pytest.mark.parametrize("variant", ["dn_template", "ad_suffix"])
def test_good_login_starts_a_new_session_and_creates_the_person(make_site, upn_proxy, variant):
    app, _ = make_site(variant)
    seed_org_and_position()
    client = app.test_client()
    with client.session_transaction() as session:
        session["planted"] = "by someone else"

    response = sign_in(client, "jdoe", PASSWORD)

    assert response.status_code == 302 and response.headers["Location"] == "/orcid"
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["identity"]["person_id"] == "900123"
        assert session["identity"]["email"] == "jane.doe@example.edu"
    person = read_person("900123")
    assert person.name == "Doe, Jane Q." and person.email == "jane.doe@example.edu"
    [position] = person.positions
    assert (position.title, position.start_date, position.org.name) == (
        "Associate Professor",
        "2015-09-01",
        "Physical Sciences",
    )
    html = client.get("/orcid").get_data(as_text=True)
    assert "Welcome, Jane Q. Doe" in html and "Create or identify your ORCID iD" in html
    if variant == "ad_suffix":
        assert upn_proxy.bind_names[-1] == "jdoe@example.edu"


def test_wrong_password_says_so_and_does_not_sign_in(make_site):
    app, mailbox = make_site()
    client = app.test_client()

    response = sign_in(client, "jdoe", "wrong")

    assert response.status_code == 401
    assert "The username or password is not correct." in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "identity" not in session
    assert mailbox.messages == []


def test_unreachable_directory_says_so_and_emails_the_team_once(make_site):
    app, mailbox = make_site(LDAP_HOSTNAME_SSL=f"ldap://127.0.0.1:{free_port()}")
    client = app.test_client()

    response = sign_in(client, "jdoe", "a secret password")

    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "campus directory cannot be reached" in html
    assert "not correct" not in html
    [(_, recipients, message)] = mailbox.messages
    assert recipients == ["repository@example.edu"]
    assert "directory unavailable" in message["Subject"]
    body = message.get_content()
    assert "a secret password" not in body and "jdoe" not in body
    assert "127.0.0.1" in body

    sign_in(client, "jdoe", "a secret password")
    assert len(mailbox.messages) == 1  # one alert per outage window
    assert db.session.scalar(select(db.func.count()).where(Message.process == "directoryDown")) == 2


def test_repeated_failures_lock_the_username_out_for_a_while(make_site):
    app, _ = make_site()
    client = app.test_client()
    for _ in range(3):
        assert sign_in(client, "jdoe", "wrong").status_code == 401

    response = sign_in(client, "jdoe", PASSWORD)

    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "identity" not in session
    assert sign_in(app.test_client(), "oddstart", "odd-pass").status_code == 302  # other people are not locked out


def test_success_forgets_earlier_failures(make_site):
    app, _ = make_site()
    client = app.test_client()
    sign_in(client, "jdoe", "wrong")
    sign_in(client, "jdoe", "wrong")
    assert sign_in(client, "jdoe", PASSWORD).status_code == 302
    rows = db.session.scalars(select(Message).where(Message.process == "loginFailure", Message.type == "user")).all()
    assert rows == []


@pytest.mark.parametrize(
    ("next_path", "expected"),
    [
        ("/orcid/review", "/orcid/review"),
        ("//evil.example/steal", "/orcid"),
        ("https://evil.example/", "/orcid"),
        ("/\\evil.example", "/orcid"),
    ],
)
def test_sign_in_returns_only_to_local_paths(make_site, next_path, expected):
    app, _ = make_site()
    response = sign_in(app.test_client(), "jdoe", PASSWORD, next_path=next_path)
    assert response.headers["Location"] == expected


def test_login_and_logout_need_the_csrf_token(make_site):
    app, _ = make_site()
    client = app.test_client()
    refused = client.post("/orcid/login", data={"username": "jdoe", "password": PASSWORD})
    assert refused.status_code == 400
    assert sign_in(client, "jdoe", PASSWORD).status_code == 302

    assert client.post("/orcid/logout").status_code == 400
    page = get_page(client, "/orcid")
    response = client.post("/orcid/logout", data={"csrf_token": csrf_of(page.data)})

    assert response.status_code == 302
    with client.session_transaction() as session:
        assert "identity" not in session
    assert "You have signed out." in client.get("/orcid").get_data(as_text=True)


def test_login_page_is_escaped_and_sent_with_security_headers(make_site):
    app, _ = make_site()
    response = app.test_client().get('/orcid?next="><script>alert(1)</script>')
    html = response.get_data(as_text=True)
    assert "<script>alert" not in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in html and " style=" not in html  # nothing inline: the CSP would block it


def test_directory_settings_choose_starttls_ca_file_template_and_filter(tmp_path):
    from ioi.clients.ldap import DirectoryConfig, bind_name, user_filter
    from ioi.config import load_settings

    settings = load_settings(
        {
            "SECRET_KEY": "x" * 32,
            "LDAP_HOSTNAME_SSL": "ldap1.example.edu ldap2.example.edu",
            "LDAP_BASE_DN": "dc=example,dc=edu",
            "LDAP_BIND_DN_TEMPLATE": f"uid={{username}},{PEOPLE_DN}",
            "LDAP_SEARCH_FILTER": "(uid={username})",
            "LDAP_START_TLS": True,
            "LDAP_CA_FILE": "/etc/ssl/campus-ca.pem",
        },
        env_file=tmp_path / "absent.env",
    )

    directory = DirectoryConfig.from_settings(settings)

    assert directory.start_tls and not directory.use_ssl
    assert directory.ca_file == "/etc/ssl/campus-ca.pem"
    assert bind_name(directory, "j,doe") == f"uid=j\\,doe,{PEOPLE_DN}"
    assert user_filter(directory, "j*doe") == "(uid=j\\2adoe)"


def test_start_tls_login_against_a_server_without_tls_is_a_directory_problem(make_site, slapd):
    app, mailbox = make_site(LDAP_START_TLS=True)
    response = sign_in(app.test_client(), "jdoe", PASSWORD)
    assert response.status_code == 503
    assert len(mailbox.messages) == 1


def test_an_account_without_person_id_or_email_is_told_whom_to_contact(make_site):
    app, _ = make_site()
    client = app.test_client()
    response = sign_in(client, "minimal", "minimal-pass")
    assert response.status_code == 401
    assert "no staff/student number or email address" in response.get_data(as_text=True)
    assert "repository@example.edu" in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "identity" not in session
