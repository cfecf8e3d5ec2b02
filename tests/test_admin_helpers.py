"""Shared helpers of the admin tests: signing in through the session, CSRF tokens, local people."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from itsdangerous import URLSafeTimedSerializer

from ioi.extensions import db
from ioi.models import Orcid, Token, User
from ioi.services.metadata_store import Value, write_record

ADMIN = "admin@example.edu"
NOW = datetime(2026, 11, 24, 10, 0, 0)


def sign_in(client, email: str = ADMIN, name: str = "Ada Lovelace", admin: bool = True) -> None:
    """Sign in by writing the session as ioi.auth.log_in does; `admin` adds the users row."""
    if admin:
        db.session.add(User(email=email.lower(), admin=1, added=NOW))
        db.session.commit()
    with client.session_transaction() as session:
        session["identity"] = {
            "person_id": "900001",
            "email": email,
            "name": name,
            "title": None,
            "department": None,
            "start_date": None,
        }


def csrf_token(client, app) -> str:
    """A valid Flask-WTF token for this client's session (works for anonymous visitors too)."""
    raw = secrets.token_hex(20)
    with client.session_transaction() as session:
        session["csrf_token"] = raw
    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token").dumps(raw)


def token_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


def add_person(
    person_id: int | str,
    name: str,
    email: str | None,
    title: str | None = None,
    start: str = "2020-01-01",
    end: str | None = None,
    org_id: str = "100",
    now: datetime = NOW,
) -> None:
    """A local person with one position (none when `title` and `start` are both empty)."""
    record: dict = {"local.person.name": [name], "local.person.id": [str(person_id)]}
    if email:
        record["local.person.email"] = [email]
    if title is not None or start:
        children: dict = {"local.org.id": [org_id], "local.date.start": [start]}
        if title:
            children["local.person.title"] = [title]
        if end:
            children["local.date.end"] = [end]
        record["local.personOrgRelation.id"] = [Value(f"{person_id}_{org_id}_{start}", children)]
    write_record("local", f"person_{person_id}", record, now)


def add_orcid(person_id: int, orcid: str, email: str, name: str, added: datetime = NOW) -> None:
    db.session.add(Orcid(email=email, orcid=orcid, name=name, localPersonID=person_id, added=added))


def add_token(
    orcid: str,
    scope: str = "/authenticate /read-limited /activities/update",
    deleted: datetime | None = None,
    reason: str | None = None,
    created: datetime = NOW,
) -> None:
    db.session.add(
        Token(
            access_token=secrets.token_hex(16),
            expiration=created + timedelta(days=365 * 20),
            scope=scope,
            orcid=orcid,
            name="x",
            created=created,
            deleted=deleted,
            deletedReason=reason,
        )
    )


def test_a_post_without_csrf_token_is_refused(app, client):
    sign_in(client)
    response = client.post("/admin/admins", data={"email": "new@example.edu"})
    assert response.status_code == 400
    assert db.session.get(User, "new@example.edu") is None
