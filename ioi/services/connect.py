"""Connecting a researcher's ORCID record: the permissions asked, the OAuth round trip, disconnecting.

The authorize URL carries a random `state` the caller keeps in the session; the callback's code is
exchanged for a token, which is stored encrypted (services.tokens). A grant with other scopes than
the live token's retires and revokes every older token of that iD at ORCID's OAuth revoke URL.
`orcids` keeps the one known iD of each local person. Services flush; the caller commits, then
sends the notification email.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from sqlalchemy import select, update

from ioi.auth import Identity
from ioi.clients.orcid import OrcidClient, OrcidError
from ioi.config import Settings
from ioi.extensions import db
from ioi.mail import MailError, build_message, send
from ioi.models import Orcid
from ioi.orcid_ids import is_valid_orcid
from ioi.services import data_versions, tokens
from ioi.services.people import name_parts

log = logging.getLogger(__name__)

AUTHENTICATE = "/authenticate"
READ_LIMITED = "/read-limited"
ACTIVITIES_UPDATE = "/activities/update"


class ConnectError(Exception):
    """The connection could not be completed; `str(exc)` is for the researcher."""


@dataclass(frozen=True)
class Connection:
    """What IOI knows about a person's ORCID link."""

    orcid: str | None
    token: tokens.TokenInfo | None

    @property
    def scopes(self) -> set[str]:
        return self.token.scopes if self.token else set()

    @property
    def can_update(self) -> bool:
        return bool(self.token) and tokens.can_update(self.token.scope, "work")

    @property
    def can_read(self) -> bool:
        return READ_LIMITED in self.scopes

    def may_review(self, member: bool) -> bool:
        """Members review once they allowed updates; non-members once their iD is authenticated."""
        return bool(self.orcid and self.token) and (self.can_update or not member)


@dataclass(frozen=True)
class Connected:
    """The result of a completed OAuth grant."""

    orcid: str
    name: str
    token: tokens.TokenInfo
    created: bool  # a new `orcids` row (vs an update of a known iD)
    revoked: int  # older tokens revoked because the scopes changed
    moved_from: int | None = None  # the iD was recorded for another local person before


def requested_scopes(settings: Settings, read_limited: bool, activities_update: bool) -> list[str]:
    """`/authenticate` always; for members, the chosen `/read-limited` and `/activities/update`."""
    scopes = [AUTHENTICATE]
    if settings.ORCID_MEMBER:
        if read_limited:
            scopes.append(READ_LIMITED)
        if activities_update:
            scopes.append(ACTIVITIES_UPDATE)
    return scopes


def new_state() -> str:
    """A random OAuth `state` value to keep in the session and compare on the callback."""
    return secrets.token_urlsafe(32)


def states_match(expected: str | None, received: str | None) -> bool:
    return bool(expected) and bool(received) and secrets.compare_digest(str(expected), str(received))


def authorize_url(settings: Settings, scopes: list[str], state: str, identity: Identity, orcid: str | None) -> str:
    """ORCID's authorize URL with the scopes, state and the pre-fill hints (names, email, known iD)."""
    family, given = name_parts(identity.name)
    params = {
        "client_id": settings.OAUTH_CLIENT_ID,
        "response_type": "code",
        "scope": " ".join(scopes),
        "redirect_uri": settings.OAUTH_REDIRECT_URI,
        "state": state,
        "family_names": family,
        "given_names": given,
        "email": identity.email,
    }
    if orcid:
        params["orcid"] = orcid
    separator = "&" if "?" in (settings.OAUTH_AUTHORIZATION_URL or "") else "?"
    # Spaces as %20 and scopes with their slashes, as ORCID documents them.
    return f"{settings.OAUTH_AUTHORIZATION_URL}{separator}{urlencode(params, safe='/', quote_via=quote)}"


def known_orcid(person_id: str) -> tuple[str, str] | None:
    """(iD, name) of the person's live `orcids` row, newest first; None if unknown (one statement)."""
    if not person_id.isdigit():
        return None
    row = db.session.execute(
        select(Orcid.orcid, Orcid.name)
        .where(Orcid.localPersonID == int(person_id), Orcid.deleted.is_(None))
        .order_by(Orcid.rowID.desc())
        .limit(1)
    ).first()
    return (row.orcid, row.name) if row else None


def connection(settings: Settings, person_id: str, now: datetime) -> Connection:
    """The person's known iD and live token."""
    known = known_orcid(person_id)
    if known is None:
        return Connection(None, None)
    return Connection(known[0], tokens.live_token(settings, known[0], now))


def complete(settings: Settings, client: OrcidClient, identity: Identity, code: str, now: datetime) -> Connected:
    """Exchange the callback's code, store the token and the iD; revoke older tokens on a scope change.

    Raises ConnectError. Flushes only: the caller commits, then calls `notify`.
    """
    if not identity.person_id.isdigit():
        raise ConnectError(
            f"Your campus person id cannot be recorded with an ORCID iD here. Please contact {settings.IR_EMAIL}."
        )
    try:
        granted = client.exchange_code(code, settings.OAUTH_REDIRECT_URI)
    except OrcidError as exc:
        log.warning("ORCID code exchange failed: %s", exc)
        raise ConnectError("ORCID could not confirm your permission. Please try again.") from None
    orcid = str(granted.get("orcid") or "")
    if not is_valid_orcid(orcid) or not granted.get("access_token"):
        raise ConnectError("ORCID's answer did not include your ORCID iD. Please try again.")
    new_scopes = set(str(granted.get("scope") or "").split())
    revoked = 0
    older = tokens.live_tokens(settings, orcid)
    if any(t.scopes != new_scopes for t in older):
        for old in tokens.retire_tokens(settings, orcid, "scope_changed", now):
            revoked += _revoke(client, old)
    token = tokens.store_token(settings, granted, now)
    name = str(granted.get("name") or identity.name)[:100]
    created, moved_from = _save_orcid(orcid, identity, name, now)
    db.session.flush()
    return Connected(orcid, name, token, created, revoked, moved_from)


def disconnect(settings: Settings, client: OrcidClient, orcid: str, now: datetime) -> int:
    """Retire every live token of that iD and revoke them at ORCID; returns how many ORCID revoked.

    The iD stays known (it still identifies the person); only the permissions end.
    """
    return sum(_revoke(client, t) for t in tokens.retire_tokens(settings, orcid, "disconnected", now))


def notify(settings: Settings, identity: Identity, connected: Connected) -> None:
    """Tell IR_EMAIL about the new or updated iD: iD, link, scopes, expiration; never a token."""
    verb = "created" if connected.created else "updated"
    link = f"{(settings.ORCID_LINK_BASE_URL or '').rstrip('/')}/{connected.orcid}"
    text = (
        f"ORCID {verb} for {connected.name}\n\n"
        f"Name: {connected.name}\nCampus email: {identity.email}\nORCID iD: {connected.orcid}\nLink: {link}\n"
        f"Scopes: {connected.token.scope}\nExpiration: {connected.token.expiration:%Y-%m-%d}\n"
    )
    if connected.revoked:
        text += f"Older permissions revoked at ORCID: {connected.revoked}\n"
    if connected.moved_from is not None:
        text += (
            f"Please check: this iD was recorded for local person {connected.moved_from} before; "
            f"it is now recorded for {identity.person_id}.\n"
        )
    message = build_message(settings, settings.IR_EMAIL, f"ORCID {verb} for {connected.name}", text)
    try:
        send(settings, message)
    except MailError as exc:
        log.error("could not notify IR_EMAIL of the ORCID grant for %s: %s", connected.orcid, exc)


def _revoke(client: OrcidClient, token: tokens.TokenInfo) -> int:
    """Revoke one token at ORCID; a failure is logged, the token is retired here either way."""
    try:
        client.revoke(token.access_token)
    except OrcidError as exc:
        log.warning("could not revoke a token of %s at ORCID: %s", token.orcid, exc)
        return 0
    return 1


def _save_orcid(orcid: str, identity: Identity, name: str, now: datetime) -> tuple[bool, int | None]:
    """Insert or update the `orcids` row of this iD; another iD of the same person stops being live.

    Returns (whether the row is new, the other local person the iD was recorded for, if any).
    """
    person_id = int(identity.person_id)
    data_versions.bump("orcids")
    db.session.execute(
        update(Orcid)
        .where(Orcid.localPersonID == person_id, Orcid.orcid != orcid, Orcid.deleted.is_(None))
        .values(deleted=now)
    )
    row = db.session.execute(select(Orcid).where(Orcid.orcid == orcid)).scalar_one_or_none()
    values = {"email": identity.email[:100], "name": name, "localPersonID": person_id, "deleted": None}
    if row is None:
        db.session.add(Orcid(orcid=orcid, added=now, **values))
        return True, None
    moved_from = row.localPersonID if row.localPersonID != person_id else None
    if moved_from is not None:
        log.warning("ORCID iD %s moves from local person %s to %s", orcid, moved_from, person_id)
    for key, value in values.items():
        setattr(row, key, value)
    return False, moved_from
