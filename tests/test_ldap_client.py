"""The directory client against a real OpenLDAP slapd on loopback (skipped when slapd is missing).

About the Active Directory style bind (`username + LDAP_ACCOUNT_SUFFIX`, e.g. `jdoe@example.edu`):
OpenLDAP refuses any simple-bind name that is not a DN, before overlays or authz-regexp (which only
maps SASL identities) could rewrite it, and a valid username never makes a DN with a suffix. So we
do not fake an AD login here: we check the exact name the client sends, and that a server refusing
it gives a configuration error rather than "wrong password". The OpenLDAP-style bind (a DN template)
is the one exercised end to end.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import date

import pytest
from ldap_server import PEOPLE_DN, SlapdUnavailable, free_port, start_slapd

from ioi.clients.ldap import (
    DirectoryConfig,
    DirectoryError,
    DirectoryUnavailable,
    InvalidCredentials,
    authenticate,
    bind_name,
    parse_start_date,
    user_filter,
)

PASSWORD = "correct horse"
TEMPLATE = f"uid={{username}},{PEOPLE_DN}"


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    try:
        server = start_slapd(tmp_path_factory.mktemp("slapd"))
    except SlapdUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


def config(*hosts: str, **overrides) -> DirectoryConfig:
    settings = {
        "hosts": hosts,
        "base_dn": "dc=example,dc=edu",
        "bind_dn_template": TEMPLATE,
        "use_ssl": False,
        "connect_timeout": 1.0,
        "receive_timeout": 1,
    }
    settings.update(overrides)
    return DirectoryConfig(**settings)


def closed_port_url() -> str:
    return f"ldap://127.0.0.1:{free_port()}"


def test_good_login_returns_the_person(slapd):
    person = authenticate(config(slapd.url), "jdoe", PASSWORD)

    assert person.dn == f"uid=jdoe,{PEOPLE_DN}"
    assert person.person_id == "900123"
    assert person.email == "jane.doe@example.edu"
    assert person.name == "Jane Q. Doe"
    assert person.title == "Associate Professor"
    assert person.department == "Physical Sciences"
    assert person.start_date == date(2015, 9, 1)


def test_ad_style_bind_name_is_username_plus_suffix():
    ad = DirectoryConfig(hosts=("ldap1.example.edu",), base_dn="dc=example,dc=edu", account_suffix="@example.edu")

    assert bind_name(ad, "jdoe") == "jdoe@example.edu"


def test_server_refusing_ad_style_name_is_a_configuration_error_not_bad_password(slapd):
    ad = config(slapd.url, bind_dn_template="", account_suffix="@example.edu")

    with pytest.raises(DirectoryError, match="bind name") as caught:
        authenticate(ad, "jdoe", PASSWORD)
    assert not isinstance(caught.value, InvalidCredentials | DirectoryUnavailable)


def test_wrong_password_is_invalid_credentials(slapd, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InvalidCredentials) as caught:
        authenticate(config(slapd.url), "jdoe", "wrong horse")

    assert "wrong horse" not in str(caught.value)
    assert "wrong horse" not in caplog.text


def test_unknown_user_is_invalid_credentials(slapd):
    with pytest.raises(InvalidCredentials):
        authenticate(config(slapd.url), "nobody", PASSWORD)


def test_user_who_binds_but_is_not_found_by_the_filter_is_invalid_credentials(slapd):
    with pytest.raises(InvalidCredentials):
        authenticate(config(slapd.url, search_filter="(employeeID={username})"), "jdoe", PASSWORD)


def test_empty_password_is_refused_without_contacting_the_directory():
    # A closed port: any bind attempt would raise DirectoryUnavailable instead.
    with pytest.raises(InvalidCredentials, match="empty password"):
        authenticate(config(closed_port_url()), "jdoe", "")


@pytest.mark.parametrize("username", ["", "   ", "*)(cn=*", "jdoe)(|(cn=*", "a" * 65, "jdoe,ou=x", "jdöe"])
def test_malformed_usernames_are_refused_without_contacting_the_directory(username):
    with pytest.raises(InvalidCredentials, match="invalid username"):
        authenticate(config(closed_port_url()), username, PASSWORD)


def test_filter_and_dn_escape_special_characters():
    assert user_filter(config("x"), "*)(cn=*") == r"(cn=\2a\29\28cn=\2a)"
    assert bind_name(config("x"), "a,b=c") == rf"uid=a\,b\=c,{PEOPLE_DN}"


def test_injection_attempt_does_not_log_in_anyone(slapd):
    with pytest.raises(InvalidCredentials):
        authenticate(config(slapd.url), "*)(cn=*", PASSWORD)


def test_first_host_down_second_host_answers(slapd):
    started = time.monotonic()
    person = authenticate(config(closed_port_url(), slapd.url), "jdoe", PASSWORD)

    assert person.person_id == "900123"
    assert time.monotonic() - started < 3


def test_bad_password_is_not_retried_on_the_next_host(slapd):
    # The second host is closed: reaching it would turn the answer into DirectoryUnavailable.
    with pytest.raises(InvalidCredentials):
        authenticate(config(slapd.url, closed_port_url()), "jdoe", "wrong horse")


def test_all_hosts_down_is_unavailable_quickly():
    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable, match="no directory host answered"):
        authenticate(config(closed_port_url(), closed_port_url()), "jdoe", PASSWORD)

    assert time.monotonic() - started < 3


@pytest.fixture
def fake_host():
    """Starts loopback TCP servers that accept and then send `reply` (or nothing); returns their URLs."""
    listeners, accepted = [], []
    stop = threading.Event()

    def serve(listener, reply):
        while not stop.is_set():
            try:
                conn = listener.accept()[0]
            except OSError:
                continue
            accepted.append(conn)
            if reply:
                conn.sendall(reply)

    def start(reply: bytes = b"") -> str:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.1)
        listeners.append(listener)
        threading.Thread(target=serve, args=(listener, reply), daemon=True).start()
        return f"ldap://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    stop.set()
    time.sleep(0.15)
    for sock in accepted + listeners:
        sock.close()


def test_host_that_never_answers_times_out_as_unavailable(fake_host, caplog):
    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable) as caught:
        authenticate(config(fake_host()), "jdoe", PASSWORD)

    assert time.monotonic() - started < 3
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in caplog.text


def test_host_answering_something_else_than_ldap_is_skipped(fake_host, slapd):
    garbage = fake_host(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    person = authenticate(config(garbage, slapd.url), "jdoe", PASSWORD)

    assert person.person_id == "900123"


def test_start_tls_against_a_server_without_tls_is_unavailable(slapd, caplog):
    with pytest.raises(DirectoryUnavailable) as caught:
        authenticate(config(slapd.url, start_tls=True), "jdoe", PASSWORD)

    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in caplog.text


def test_ldaps_against_a_plain_server_is_unavailable(slapd):
    plain = slapd.url.removeprefix("ldap://")
    with pytest.raises(DirectoryUnavailable):
        authenticate(config(plain, use_ssl=True), "jdoe", PASSWORD)


def test_filter_matching_several_entries_is_a_directory_error(slapd):
    loose = config(slapd.url, search_filter="(|(cn={username})(cn=minimal))")

    with pytest.raises(DirectoryError, match="several directory entries") as caught:
        authenticate(loose, "jdoe", PASSWORD)
    assert not isinstance(caught.value, InvalidCredentials)


def test_missing_base_dn_is_a_directory_error(slapd):
    with pytest.raises(DirectoryError, match="dc=nowhere") as caught:
        authenticate(config(slapd.url, base_dn="dc=nowhere"), "jdoe", PASSWORD)
    assert not isinstance(caught.value, InvalidCredentials)


def test_missing_optional_attributes_are_none(slapd):
    person = authenticate(config(slapd.url), "minimal", "minimal-pass")

    assert person.dn == f"uid=minimal,{PEOPLE_DN}"
    assert (person.person_id, person.email, person.name, person.title, person.department, person.start_date) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )


def test_impossible_start_date_is_none(slapd):
    person = authenticate(config(slapd.url), "oddstart", "odd-pass")

    assert person.email == "oddstart@example.edu"
    assert person.start_date is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20150901083000.0Z", date(2015, 9, 1)),
        ("20240229", date(2024, 2, 29)),
        ("20230229000000Z", None),
        ("2015-09-01", None),
        ("2015", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_start_date(value, expected):
    assert parse_start_date(value) == expected


def test_config_refuses_unusable_settings():
    with pytest.raises(ValueError, match="no hosts"):
        DirectoryConfig(hosts=(), base_dn="dc=example,dc=edu")
    with pytest.raises(ValueError, match="not both"):
        DirectoryConfig(hosts=("h",), base_dn="dc=example,dc=edu", use_ssl=True, start_tls=True)
    with pytest.raises(ValueError, match="not a DN"):
        DirectoryConfig(hosts=("h",), base_dn="dc=example,dc=edu", bind_dn_template="{username}@example.edu")
    with pytest.raises(ValueError, match="search filter"):
        DirectoryConfig(hosts=("h",), base_dn="dc=example,dc=edu", search_filter="(cn=jdoe)")


def test_config_from_settings_uses_ldaps_to_each_host(tmp_path):
    from ioi.config import load_settings

    settings = load_settings(
        {
            "SECRET_KEY": "x" * 32,
            "LDAP_HOSTNAME_SSL": "ldap1.example.edu ldap2.example.edu",
            "LDAP_BASE_DN": "dc=example,dc=edu",
            "LDAP_ACCOUNT_SUFFIX": "@example.edu",
        },
        env_file=tmp_path / "absent.env",
    )

    directory = DirectoryConfig.from_settings(settings)

    assert directory.hosts == ("ldap1.example.edu", "ldap2.example.edu")
    assert directory.use_ssl and not directory.bind_dn_template
    assert directory.person_id_attribute == "employeeID"
    assert bind_name(directory, "jdoe") == "jdoe@example.edu"
