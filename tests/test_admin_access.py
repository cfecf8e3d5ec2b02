"""Only admins reach the admin area: every admin URL and method, for anonymous, non-admin and admin."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from test_admin_helpers import ADMIN, NOW, csrf_token, sign_in, token_from

from ioi.extensions import db
from ioi.models import User

# A sample value per URL argument; an argument not listed here gets "x" (and then a 404 for admins).
SAMPLE_ARGS = {"batch_id": 1, "message_id": 1, "key": "orcids-by-group", "label": "initial"}
MISSING_ROWS = {"admin.report", "admin.batch_status"}  # no row 1 in an empty database
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def admin_requests(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every admin route, so a new route cannot escape these tests."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin."):
            continue
        args = {name: SAMPLE_ARGS.get(name, "x") for name in rule.arguments}
        with app.test_request_context():
            url = rule.build(args, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return found


def call(client, app, method: str, url: str):
    data = {"csrf_token": csrf_token(client, app)} if method != "GET" else None
    return client.open(url, method=method, data=data)


def test_the_admin_area_has_routes_and_all_are_tested(app):
    endpoints = {e for e, _, _ in admin_requests(app)}
    assert {"admin.index", "admin.emails", "admin.names", "admin.upload", "admin.reports", "admin.admins_page"} <= (
        endpoints
    )
    assert "/admin.php" in {u for _, _, u in admin_requests(app)}


def test_anonymous_visitors_are_sent_to_sign_in_everywhere(app, client):
    for endpoint, method, url in admin_requests(app):
        response = call(client, app, method, url)
        assert response.status_code == 302, (endpoint, method)
        assert "/orcid" in response.headers["Location"], (endpoint, method)


def test_people_who_are_not_admins_get_403_everywhere(app, client):
    sign_in(client, email="someone@example.edu", admin=False)
    db.session.add(User(email="demoted@example.edu", admin=0, added=NOW))
    db.session.commit()
    for endpoint, method, url in admin_requests(app):
        response = call(client, app, method, url)
        assert response.status_code == 403, (endpoint, method)
    sign_in(client, email="demoted@example.edu", admin=False)
    for endpoint, method, url in admin_requests(app):
        assert call(client, app, method, url).status_code == 403, (endpoint, method)


def test_admins_get_through_everywhere(app, client):
    sign_in(client)
    for endpoint, method, url in admin_requests(app):
        response = call(client, app, method, url)
        expected = (404,) if endpoint in MISSING_ROWS else (200, 302)
        assert response.status_code in expected, (endpoint, method, response.status_code)


def test_other_methods_are_not_allowed(app, client):
    sign_in(client)
    assert client.delete("/admin/emails").status_code == 405
    assert client.put("/admin", data={"csrf_token": csrf_token(client, app)}).status_code == 405


def test_an_admin_removed_while_signed_in_is_refused_at_once(app, client):
    sign_in(client)
    assert client.get("/admin").status_code == 200
    db.session.execute(select(User).where(User.email == ADMIN)).scalar_one().admin = 0
    db.session.commit()
    assert client.get("/admin").status_code == 403


def test_admins_add_and_remove_admins(app, client):
    sign_in(client)
    page = client.get("/admin/admins")
    assert ADMIN in page.text and "(you)" in page.text
    token = token_from(page.text)
    response = client.post("/admin/admins", data={"csrf_token": token, "email": "  Grace.Hopper@Example.EDU "})
    assert response.status_code == 302
    assert db.session.get(User, "grace.hopper@example.edu").admin == 1
    page = client.get("/admin/admins")
    assert "grace.hopper@example.edu is now an admin." in page.text

    response = client.post("/admin/admins", data={"csrf_token": token, "email": "grace.hopper@example.edu"},
                           follow_redirects=True)  # fmt: skip
    assert "already an admin" in response.text

    response = client.post("/admin/admins/remove", data={"csrf_token": token, "email": "grace.hopper@example.edu"},
                           follow_redirects=True)  # fmt: skip
    assert "no longer an admin" in response.text
    db.session.expire_all()
    user = db.session.get(User, "grace.hopper@example.edu")
    assert user.admin == 0  # the row stays: nothing is lost


@pytest.mark.parametrize("bad", ["not-an-email", "a@b", "two@@example.edu", "x" * 95 + "@example.edu", ""])
def test_a_bad_admin_address_is_refused_with_a_message(app, client, bad):
    sign_in(client)
    token = token_from(client.get("/admin/admins").text)
    response = client.post("/admin/admins", data={"csrf_token": token, "email": bad}, follow_redirects=True)
    assert response.status_code == 200
    assert "is not an email address" in response.text or "This field is required" in response.text
    assert db.session.execute(select(User).where(User.admin == 1)).scalars().all()[0].email == ADMIN
    assert len(db.session.execute(select(User)).scalars().all()) == 1


def test_admins_cannot_remove_themselves(app, client):
    sign_in(client, email="Ada@Example.edu")
    token = token_from(client.get("/admin/admins").text)
    response = client.post("/admin/admins/remove", data={"csrf_token": token, "email": "ada@example.edu"},
                           follow_redirects=True)  # fmt: skip
    assert "You cannot remove yourself" in response.text
    db.session.expire_all()
    assert db.session.get(User, "ada@example.edu").admin == 1
