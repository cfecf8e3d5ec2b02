"""Helpers shared by the researcher-page tests: the ORCID simulator, seeded people and works, CSRF tokens.

Import what you need (`from test_orcid_support import ...`); this module holds no tests itself.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import requests

from ioi.extensions import db
from ioi.services.metadata_store import Value, write_records

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
NOW = datetime(2026, 11, 24, 12, 0, 0)
PERSON_ID = "900123"
PERSON_EMAIL = "jane.doe@example.edu"
SSO = {
    "X-Ioi-Person-Id": PERSON_ID,
    "X-Ioi-Email": PERSON_EMAIL,
    "X-Ioi-Name": "Jane Q. Doe",
    "X-Ioi-Title": "Associate Professor",
    "X-Ioi-Department": "Physical Sciences",
    "X-Ioi-Start-Date": "2015-09-01",
}


def csrf_of(html: str | bytes) -> str:
    """The CSRF token in a rendered page."""
    text = html.decode() if isinstance(html, bytes) else html
    match = CSRF.search(text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def get_page(client, path: str = "/orcid", **kwargs):
    """GET a page for its form. Tests keep an app context pushed around their requests, so Flask-WTF's
    per-context token cache (`g.csrf_token`) would outlive a session change (sign-in, another client)."""
    from flask import g

    g.pop("csrf_token", None)
    return client.get(path, **kwargs)


def simulator_settings(server_url: str, client, redirect_uri: str = "http://localhost/orcid", **extra) -> dict:
    """App settings pointing every ORCID URL at a running simulator."""
    settings = {
        "OAUTH_AUTHORIZATION_URL": f"{server_url}/oauth/authorize",
        "OAUTH_TOKEN_URL": f"{server_url}/oauth/token",
        "OAUTH_REVOKE_URL": f"{server_url}/oauth/revoke",
        "ORCID_API_URL": f"{server_url}/v3.0/",
        "OAUTH_CLIENT_ID": client.client_id,
        "OAUTH_CLIENT_SECRET": client.client_secret,
        "OAUTH_REDIRECT_URI": redirect_uri,
        "INSTITUTION_RINGGOLD_ID": "127355",
    }
    settings.update(extra)
    return settings


def consent(authorize_url: str, researcher: str | None = None, action: str = "authorize", **register) -> str:
    """Answer ORCID's consent page over HTTP as the researcher would; returns the redirect back (URL)."""
    parts = urlsplit(authorize_url)
    args = {k: v[0] for k, v in parse_qs(parts.query).items()}
    page = requests.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text
    form = {k: args.get(k, "") for k in ("client_id", "response_type", "scope", "redirect_uri", "state")}
    form["action"] = action
    if register:
        form.update(mode="register", **register)
    else:
        form.update(mode="signin", researcher=researcher or "")
    answer = requests.post(
        f"{parts.scheme}://{parts.netloc}/oauth/authorize", data=form, allow_redirects=False, timeout=10
    )
    assert answer.status_code in (302, 303), answer.text
    return answer.headers["Location"]


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def seed_org_and_position(person_id: str = PERSON_ID) -> None:
    """An organisation named like the directory's department, so sign-in creates a position."""
    write_records(
        "local",
        {
            "org_1": {"local.org.id": ["1"], "local.org.name": ["Test University"], "local.org.type": ["university"]},
            "org_7": {
                "local.org.id": ["7"],
                "local.org.name": ["Physical Sciences"],
                "local.org.type": ["department"],
                "local.org.parent": ["1"],
            },
        },
        NOW,
    )
    db.session.commit()


def seed_works(count: int, name: str = "Doe, Jane Q.", orcid: str | None = None, start: int = 1) -> list[str]:
    """`count` harvested repository items by `name`; with `orcid`, every other one carries the iD."""
    records = {}
    for n in range(start, start + count):
        handle = f"10754/{n}"
        children: dict = {}
        if orcid and n % 2 == 0:
            children = {"dspace.authority.key": [Value(f"key-{n}", {"dc.identifier.orcid": [orcid]})]}
        records[handle] = {
            "dc.title": [f"Study number {n} of <coral> & reefs"],
            "dc.contributor.author": [Value(name, children), "Other, Author"],
            "dc.identifier.journal": ["Journal of Tests"],
            "dc.type": ["Article"],
            "dc.date.issued": [f"20{10 + n % 15:02d}-0{1 + n % 9}-15"],
            "dc.identifier.uri": [f"http://hdl.handle.net/{handle}"],
        }
    write_records("dspace", records, NOW)
    db.session.commit()
    return [f"repository_{h}" for h in records]
