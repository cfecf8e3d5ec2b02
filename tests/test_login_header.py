"""Sign-in from SSO headers (IOI_AUTH=header), only when configured; the demo sign-in, only in demo mode;
session cookie flags."""

from __future__ import annotations

import pytest
from conftest import _reset_tables, make_app
from test_orcid_support import PERSON_ID, SSO, csrf_of, get_page, seed_org_and_position

from ioi.extensions import db
from ioi.services.metadata_store import Value, write_records
from ioi.services.people import read_person


@pytest.fixture
def site(migrated):
    apps = []

    def build(**settings):
        app = make_app(migrated, **settings)
        context = app.app_context()
        context.push()
        apps.append(context)
        _reset_tables()
        return app

    yield build
    db.session.remove()
    db.engine.dispose()
    for context in reversed(apps):
        context.pop()


def identity_of(client) -> dict | None:
    with client.session_transaction() as session:
        return session.get("identity")


def test_headers_sign_the_person_in_and_create_their_record(site):
    app = site(IOI_AUTH="header")
    seed_org_and_position()
    client = app.test_client()

    html = client.get("/orcid", headers=SSO).get_data(as_text=True)

    assert "Welcome, Jane Q. Doe" in html
    assert identity_of(client)["person_id"] == PERSON_ID
    person = read_person(PERSON_ID)
    assert person.name == "Doe, Jane Q."
    assert person.positions[0].title == "Associate Professor"
    assert client.get("/orcid").status_code == 200  # the session carries on without the headers


def test_header_names_are_configurable(site):
    app = site(IOI_AUTH="header", SSO_HEADER_PERSON_ID="X-Employee", SSO_HEADER_EMAIL="X-Mail")
    client = app.test_client()
    client.get("/orcid", headers={"X-Employee": "42", "X-Mail": "Someone@Example.edu"})
    assert identity_of(client)["email"] == "someone@example.edu"


def test_a_new_person_in_the_headers_replaces_the_session(site):
    app = site(IOI_AUTH="header")
    client = app.test_client()
    client.get("/orcid", headers=SSO)
    client.get("/orcid", headers={**SSO, "X-Ioi-Person-Id": "777", "X-Ioi-Email": "other@example.edu"})
    assert identity_of(client)["person_id"] == "777"


def test_without_headers_the_page_explains_and_signs_nobody_in(site):
    app = site(IOI_AUTH="header")
    client = app.test_client()
    response = client.get("/orcid")
    assert response.status_code == 403
    assert "Campus sign-in needed" in response.get_data(as_text=True)
    assert identity_of(client) is None
    incomplete = client.get("/orcid", headers={"X-Ioi-Person-Id": "1"})
    assert incomplete.status_code == 403 and "email" in incomplete.get_data(as_text=True)


def test_headers_are_ignored_unless_header_sign_in_is_configured(site):
    app = site()  # IOI_AUTH defaults to ldap
    client = app.test_client()
    html = client.get("/orcid", headers=SSO).get_data(as_text=True)
    assert "Campus username" in html
    assert identity_of(client) is None


def test_password_form_is_off_in_header_mode(site):
    app = site(IOI_AUTH="header")
    client = app.test_client()
    token = csrf_of(get_page(client, "/orcid", headers=SSO).data)
    assert client.post("/orcid/login", data={"csrf_token": token, "username": "a", "password": "b"}).status_code == 404


def test_logout_in_header_mode_says_how_to_end_the_sso_session(site):
    app = site(IOI_AUTH="header")
    client = app.test_client()
    token = csrf_of(get_page(client, "/orcid", headers=SSO).data)
    html = client.post("/orcid/logout", data={"csrf_token": token}).get_data(as_text=True)
    assert "close your browser" in html
    assert identity_of(client) is None


def test_demo_sign_in_is_404_outside_demo_mode(site):
    app = site()
    assert app.test_client().get("/orcid/demo").status_code == 404


def test_demo_sign_in_lists_local_people_and_signs_in_as_one(site):
    app = site(IOI_DEMO=True)
    seed_org_and_position()
    relation = Value("501_7_2020-01-01", {"local.org.id": ["7"], "local.person.title": ["PhD Student"]})
    write_records(
        "local",
        {
            "person_501": {
                "local.person.name": ["Okafor, Amina"],
                "local.person.id": ["501"],
                "local.person.email": ["amina.okafor@demo.example.edu"],
                "local.personOrgRelation.id": [relation],
            }
        },
        __import__("datetime").datetime(2026, 1, 1),
    )
    db.session.commit()
    client = app.test_client()
    assert "demo people" in client.get("/orcid").get_data(as_text=True)

    page = get_page(client, "/orcid/demo")
    assert "Okafor, Amina" in page.get_data(as_text=True)
    response = client.post("/orcid/demo", data={"csrf_token": csrf_of(page.data), "person_id": "501"})

    assert response.status_code == 302
    assert identity_of(client)["name"] == "Amina Okafor"
    assert identity_of(client)["title"] == "PhD Student"


def test_session_cookie_is_secure_httponly_and_samesite_behind_https(site):
    app = site(IOI_AUTH="header", OAUTH_REDIRECT_URI="https://orcid.example.edu/orcid")
    response = app.test_client().get("/orcid", headers=SSO)
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"]


def test_admins_get_a_link_to_the_admin_area_and_others_do_not(site):
    from ioi.models import User

    app = site(IOI_AUTH="header")
    client = app.test_client()
    assert "Go to the admin area" not in client.get("/orcid", headers=SSO).get_data(as_text=True)
    db.session.add(User(email=SSO["X-Ioi-Email"], admin=1))
    db.session.commit()
    assert "Go to the admin area" in client.get("/orcid").get_data(as_text=True)


def test_header_sign_in_returns_to_the_page_asked_for_but_only_locally(site):
    app = site(IOI_AUTH="header")
    assert app.test_client().get("/orcid/review").headers["Location"] == "/orcid?next=/orcid/review"
    response = app.test_client().get("/orcid?next=/orcid/review", headers=SSO)
    assert response.headers["Location"] == "/orcid/review"
    response = app.test_client().get("/orcid?next=//evil.example/", headers=SSO)
    assert response.headers["Location"] == "/orcid"


def test_header_values_keep_utf8_names_and_take_the_first_of_several(site):
    app = site(IOI_AUTH="header")
    client = app.test_client()
    name = "Søren Núñez".encode().decode("latin-1")  # how a WSGI server hands over UTF-8 header bytes
    client.get("/orcid", headers={**SSO, "X-Ioi-Name": name, "X-Ioi-Email": "a@example.edu;b@example.edu"})
    assert identity_of(client)["name"] == "Søren Núñez"
    assert identity_of(client)["email"] == "a@example.edu"
