"""The researcher page end to end against the ORCID simulator over real HTTP: connect, deny, change
scopes, disconnect, push, deselect, and ORCID failing during a submit."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import _reset_tables, make_app
from sqlalchemy import select
from test_orcid_support import (
    PERSON_EMAIL,
    PERSON_ID,
    SSO,
    consent,
    csrf_of,
    get_page,
    local_path,
    seed_org_and_position,
    seed_works,
    simulator_settings,
)

from ioi.extensions import db
from ioi.models import Orcid, PutCode, Token, UserSelection
from ioi.sandbox.orcid import OrcidSimulator


@pytest.fixture(scope="module")
def orcid_server():
    """One simulator served over HTTP per test module; tests call `sim.reset()` through `sim`."""
    simulator = OrcidSimulator(rate=None)
    with simulator.serve() as server:
        yield simulator, server.url


@pytest.fixture
def sim(orcid_server):
    simulator, _ = orcid_server
    simulator.reset()
    yield simulator
    simulator.reset()


@dataclass
class Page:
    app: object
    client: object
    sim: object
    mailbox: object
    researcher: object

    def get(self, path: str = "/orcid", **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, page: str = "/orcid"):
        form = {"csrf_token": csrf_of(get_page(self.client, page).data), **(data or {})}
        return self.client.post(path, data=form)

    def authorize_url(self, read_limited: bool = True, activities_update: bool = True) -> str:
        data = {}
        if read_limited:
            data["read_limited"] = "y"
        if activities_update:
            data["activities_update"] = "y"
        response = self.post("/orcid/connect", data)
        assert response.status_code == 302
        return response.headers["Location"]

    def connect(self, read_limited: bool = True, activities_update: bool = True):
        back = consent(self.authorize_url(read_limited, activities_update), self.researcher.orcid)
        return self.get(local_path(back))

    def submit(self, checked: list[str]):
        return self.post("/orcid/review", {"item": checked}, page="/orcid/review")


def build_page(migrated, orcid_server, sim, smtp_server, redirect_uri="http://localhost/orcid", **settings):
    simulator, url = orcid_server
    client = sim.register_client(redirect_uris=[redirect_uri])
    port, mailbox = smtp_server
    app = make_app(
        migrated, IOI_AUTH="header", SMTP_PORT=port, **simulator_settings(url, client, redirect_uri), **settings
    )
    researcher = sim.create_researcher("Jane", "Doe", PERSON_EMAIL)
    return app, mailbox, researcher


@pytest.fixture
def page(migrated, orcid_server, sim, smtp_server):
    app, mailbox, researcher = build_page(migrated, orcid_server, sim, smtp_server)
    with app.app_context():
        _reset_tables()
        seed_org_and_position()
        web = Page(app, app.test_client(), sim, mailbox, researcher)
        assert web.get("/orcid", headers=SSO).status_code == 200
        yield web
        db.session.remove()
        db.engine.dispose()


def live_tokens(orcid: str) -> list[Token]:
    db.session.expire_all()
    return list(db.session.scalars(select(Token).where(Token.orcid == orcid, Token.deleted.is_(None))))


def test_authorize_redirect_carries_scopes_state_and_prefill_hints(page):
    url = page.authorize_url()
    args = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}

    assert url.startswith(page.app.config["OAUTH_AUTHORIZATION_URL"] + "?")
    assert args["response_type"] == "code"
    assert args["client_id"] == page.app.config["OAUTH_CLIENT_ID"]
    assert args["redirect_uri"] == "http://localhost/orcid"
    assert args["scope"] == "/authenticate /read-limited /activities/update"
    assert "%20" in url and "scope=/authenticate" in url
    assert len(args["state"]) >= 32
    assert (args["family_names"], args["given_names"], args["email"]) == ("Doe", "Jane Q.", PERSON_EMAIL)
    assert "orcid" not in args  # not known yet


def test_connect_stores_the_token_encrypted_records_the_orcid_and_tells_the_team(page):
    response = page.connect()

    assert response.status_code == 302 and response.headers["Location"].endswith("/orcid/review")
    row = db.session.execute(select(Orcid)).scalar_one()
    assert (row.orcid, row.email, row.localPersonID, row.name) == (
        page.researcher.orcid,
        PERSON_EMAIL,
        int(PERSON_ID),
        "Jane Doe",
    )
    [token] = live_tokens(page.researcher.orcid)
    issued = page.sim.tokens[-1]
    assert token.access_token != issued.access_token and issued.access_token not in token.access_token
    assert set(token.scope.split()) == {"/authenticate", "/read-limited", "/activities/update"}
    [(_, recipients, message)] = page.mailbox.messages
    assert recipients == ["repository@example.edu"]
    assert message["Subject"] == "ORCID created for Jane Doe"
    body = message.get_content()
    assert page.researcher.orcid in body and "/activities/update" in body
    assert issued.access_token not in body and issued.refresh_token not in body

    response = page.get()
    home = response.get_data(as_text=True)
    authorize = urlsplit(page.app.config["OAUTH_AUTHORIZATION_URL"])
    policy = response.headers["Content-Security-Policy"]
    assert f"form-action 'self' {authorize.scheme}://{authorize.netloc}" in policy and not policy.endswith("https:")
    assert f"https://sandbox.orcid.org/{page.researcher.orcid}" in home
    assert 'aria-label="ORCID iD' in home and "img/orcid-id.svg" in home
    assert "Manage permissions" in home and "History" in home


def test_callback_with_another_state_is_refused(page):
    page.authorize_url()
    response = page.get("/orcid?code=abcdef&state=forged", follow_redirects=True)

    assert "Invalid state. Your session may have timed out" in response.get_data(as_text=True)
    assert db.session.execute(select(Orcid)).first() is None
    assert not [c for c in page.sim.calls if c.path == "/oauth/token"]


def test_denying_shows_a_kind_page_with_a_retry(page):
    back = consent(page.authorize_url(), action="deny")
    response = page.get(local_path(back))
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "No permission was given" in html
    assert 'action="/orcid/connect"' in html and "Try again" in html
    assert db.session.execute(select(Orcid)).first() is None


def test_changing_scopes_revokes_the_older_token_at_orcid(page):
    page.connect(read_limited=True, activities_update=False)
    first = page.sim.tokens[-1]
    home = page.get().get_data(as_text=True)
    assert "Review and edit" not in home

    page.connect(read_limited=True, activities_update=True)

    [old] = [t for t in page.sim.tokens if t.access_token == first.access_token]
    assert old.revoked
    assert [c.path for c in page.sim.calls if c.path == "/oauth/revoke"] == ["/oauth/revoke"]
    [live] = live_tokens(page.researcher.orcid)
    assert "/activities/update" in live.scope.split()
    retired = db.session.scalars(select(Token).where(Token.deleted.is_not(None))).all()
    assert [t.deletedReason for t in retired] == ["scope_changed"]
    assert page.mailbox.messages[-1][2]["Subject"] == "ORCID updated for Jane Doe"


def test_disconnect_revokes_and_retires_the_token(page):
    page.connect()
    response = page.post("/orcid/disconnect")

    assert response.status_code == 302
    assert all(t.revoked for t in page.sim.tokens)
    assert live_tokens(page.researcher.orcid) == []
    html = page.get().get_data(as_text=True)
    assert "Connect your ORCID to TU" in html  # the iD stays known, the permission is gone


def test_disconnect_needs_the_csrf_token(page):
    page.connect()
    assert page.client.post("/orcid/disconnect").status_code == 400
    assert len(live_tokens(page.researcher.orcid)) == 1


def test_review_lists_works_by_name_and_by_orcid_and_the_affiliation(page):
    page.connect()
    seed_works(3, orcid=page.researcher.orcid)
    seed_works(1, name="Someone, Else", orcid=page.researcher.orcid, start=10)  # iD only
    html = page.get("/orcid/review").get_data(as_text=True)

    assert html.count('name="item"') == 5  # four works, one affiliation
    assert "Study number 10 of &lt;coral&gt; &amp; reefs" in html  # escaped
    assert "<coral>" not in html
    assert "your ORCID iD" in html and "your name" in html
    assert "Associate Professor" in html and "Test University (Physical Sciences)" in html
    assert html.count("checked") >= 5


def test_submit_pushes_selected_items_and_deselecting_deletes_them_from_orcid(page):
    page.connect()
    works = seed_works(3)
    response = page.get("/orcid/review")
    affiliation = [i for i in _items(response) if i.startswith("local_person_")]

    html = page.submit(works + affiliation).get_data(as_text=True)

    assert "3</span> added to your ORCID record" in html
    assert len(page.sim.items(page.researcher.orcid, "work")) == 3
    assert len(page.sim.items(page.researcher.orcid, "employment")) == 1
    review = page.get("/orcid/review").get_data(as_text=True)
    assert review.count(">On ORCID<") == 4

    html = page.submit(works[1:] + affiliation).get_data(as_text=True)

    assert "1</span> removed from your ORCID record" in html
    assert len(page.sim.items(page.researcher.orcid, "work")) == 2
    gone = db.session.scalars(select(PutCode).where(PutCode.localSourceRecordID == works[0])).one()
    assert gone.deleted is not None
    choice = db.session.scalars(
        select(UserSelection).where(UserSelection.localSourceRecordID == works[0], UserSelection.deleted.is_(None))
    ).one()
    assert choice.ignored is not None
    assert "Ignored" in page.get("/orcid/review").get_data(as_text=True)


def test_orcid_failing_with_500_keeps_the_choice_and_says_it_will_retry(page):
    page.connect()
    [work] = seed_works(1)
    page.sim.fail_next(10, 500, method="POST", path=r"/work$")

    html = page.submit([work]).get_data(as_text=True)

    assert "could not be sent to ORCID just now" in html
    assert "Failed, will retry" in html
    assert page.sim.items(page.researcher.orcid, "work") == []
    assert _live_choice(work) == "selected"
    page.sim.clear_faults()
    html = page.submit([work]).get_data(as_text=True)
    assert "1</span> added to your ORCID record" in html


def test_orcid_refusing_the_token_with_401_asks_for_permission_again(page):
    page.connect()
    [work] = seed_works(1)
    page.sim.fail_next(1, 401, method="POST")

    html = page.submit([work]).get_data(as_text=True)

    assert "grant permission again" in html
    assert _live_choice(work) == "selected"
    assert live_tokens(page.researcher.orcid) == []
    retired = db.session.scalars(select(Token)).one()
    assert retired.deletedReason == "invalid_token"


def test_orcid_409_duplicate_is_adopted_not_duplicated(page):
    page.connect()
    [work] = seed_works(1)
    page.submit([work])
    [item] = page.sim.items(page.researcher.orcid, "work")
    db.session.execute(PutCode.__table__.delete())  # as if the put-code had been lost
    db.session.commit()

    html = page.submit([work]).get_data(as_text=True)

    assert "1</span> already on your ORCID record" in html
    assert [i.put_code for i in page.sim.items(page.researcher.orcid, "work")] == [item.put_code]
    row = db.session.scalars(select(PutCode).where(PutCode.deleted.is_(None))).one()
    assert row.putCode == str(item.put_code)


def test_review_needs_the_update_permission(page):
    page.connect(activities_update=False)
    response = page.get("/orcid/review")
    assert response.status_code == 302 and response.headers["Location"].endswith("/orcid")


def test_legacy_orcid_php_works_as_the_registered_redirect_uri(migrated, orcid_server, sim, smtp_server):
    app, _, researcher = build_page(migrated, orcid_server, sim, smtp_server, redirect_uri="http://localhost/orcid.php")
    with app.app_context():
        _reset_tables()
        web = Page(app, app.test_client(), sim, None, researcher)
        assert "Create or identify your ORCID iD" in web.get("/orcid.php", headers=SSO).get_data(as_text=True)
        url = web.authorize_url()
        assert parse_qs(urlsplit(url).query)["redirect_uri"] == ["http://localhost/orcid.php"]
        back = consent(url, researcher.orcid)
        assert urlsplit(back).path == "/orcid.php"
        response = web.get(local_path(back))
        assert response.status_code == 302
        assert db.session.execute(select(Orcid.orcid)).scalar_one() == researcher.orcid
        db.session.remove()
        db.engine.dispose()


def test_public_api_mode_asks_authenticate_only_lists_works_and_never_writes_to_orcid(
    migrated, orcid_server, sim, smtp_server
):
    app, _, researcher = build_page(migrated, orcid_server, sim, smtp_server, ORCID_MEMBER=False)
    with app.app_context():
        _reset_tables()
        seed_org_and_position()
        web = Page(app, app.test_client(), sim, None, researcher)
        web.get("/orcid", headers=SSO)
        home = web.get().get_data(as_text=True)
        assert "Read information from my ORCID record" not in home
        url = web.authorize_url()
        assert parse_qs(urlsplit(url).query)["scope"] == ["/authenticate"]
        assert web.get(local_path(consent(url, researcher.orcid))).headers["Location"].endswith("/orcid/review")
        works = seed_works(2)
        review = web.get("/orcid/review").get_data(as_text=True)
        assert review.count('name="item"') == 2 and "Affiliations" not in review
        html = web.submit(works[:1]).get_data(as_text=True)
        assert "1</span> newly selected" in html and "added to your ORCID record" not in html
        assert _live_choice(works[1]) == "ignored"
        assert not [c for c in sim.calls if c.path.startswith("/v3.0/")]
        db.session.remove()
        db.engine.dispose()


def _items(response) -> list[str]:
    import re

    return re.findall(r'name="item" value="([^"]+)"', response.get_data(as_text=True))


def _live_choice(local_id: str) -> str | None:
    db.session.expire_all()
    row = db.session.scalars(
        select(UserSelection).where(UserSelection.localSourceRecordID == local_id, UserSelection.deleted.is_(None))
    ).one_or_none()
    if row is None:
        return None
    return "selected" if row.selected else "ignored"


def test_a_long_first_submit_sends_forty_items_now_and_leaves_the_rest_for_the_nightly_task(page):
    page.connect()
    works = seed_works(45)

    html = page.submit(works).get_data(as_text=True)

    assert "40</span> added to your ORCID record" in html
    assert "45</span> newly selected" in html
    assert "5 of your selected items will be added to your ORCID record" in html
    assert len(page.sim.items(page.researcher.orcid, "work")) == 40
    assert all(_live_choice(w) == "selected" for w in works)
    assert page.get("/orcid/review").get_data(as_text=True).count('badge-waiting">Waiting<') == 5


def test_an_id_recorded_for_someone_else_moves_and_the_team_is_asked_to_check(page):
    db.session.add(Orcid(orcid=page.researcher.orcid, email="old@example.edu", name="Old", localPersonID=555))
    db.session.commit()

    page.connect()

    row = db.session.execute(select(Orcid)).scalar_one()
    assert (row.localPersonID, row.email) == (int(PERSON_ID), PERSON_EMAIL)
    message = page.mailbox.messages[-1][2]
    assert message["Subject"] == "ORCID updated for Jane Doe"
    assert "recorded for local person 555 before" in message.get_content()


def test_the_query_api_answers_the_new_id_right_after_connecting(migrated, orcid_server, sim, smtp_server):
    """The query API keeps answers in memory; connecting an iD must make it answer afresh at once."""
    key = "query-key-for-the-flow-test"
    app, mailbox, researcher = build_page(migrated, orcid_server, sim, smtp_server, QUERY_API_KEYS=key)
    with app.app_context():
        _reset_tables()
        seed_org_and_position()
        web = Page(app, app.test_client(), sim, mailbox, researcher)
        assert web.get("/orcid", headers=SSO).status_code == 200
        old = "0000-0002-9079-593X"
        db.session.add(Orcid(orcid=old, email=PERSON_EMAIL, name="Jane Doe", localPersonID=int(PERSON_ID)))
        db.session.commit()

        def recorded_orcid() -> str:
            answer = web.client.get(f"/query?tuid={PERSON_ID}&request=orcid", headers={"X-API-Key": key})
            return answer.get_json()["ORCID"]

        assert recorded_orcid() == recorded_orcid() == old  # the second answer comes from the cache
        web.connect()
        assert recorded_orcid() == researcher.orcid
        db.session.remove()
        db.engine.dispose()
