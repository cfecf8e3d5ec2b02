"""ORCID OAuth tokens granted by researchers (`tokens`), encrypted at rest.

`access_token` and `refresh_token` are stored as Fernet tokens under `settings.token_key`. Rows
written by the PHP IOI hold plain values: a stored value that is not a Fernet token is read as
plain text, and is encrypted when its row is next rewritten (or by `encrypt_legacy_tokens`).
A value that looks like a Fernet token but does not decrypt means the key changed: that raises
`TokenKeyError` rather than sending ciphertext to ORCID as a bearer token.

The live token of a person has `deleted` NULL and an expiration in the future. Retiring sets
`deleted` and `deletedReason` (e.g. `invalid_token`, `scope_changed`, `disconnected`).
Services flush; the caller commits. Token values are never logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import aliased

from ioi.config import Settings
from ioi.extensions import db
from ioi.models import Token

# Reasons that mean ORCID refused the token: the person must grant permission again.
INVALID_REASONS = ("invalid_token", "invalid_scope", "insufficient_scope")
UPDATE_SCOPE = "/activities/update"
LEGACY_SCOPES = {
    "work": "/orcid-works/create",
    "employment": "/affiliations/create",
    "education": "/affiliations/create",
}
# Fernet tokens are urlsafe base64 of a version byte 0x80 + timestamp..., so they start "gAAAAA".
FERNET_SHAPE = re.compile(r"^gAAAAA[A-Za-z0-9_\-]{50,}={0,2}$")


class TokenKeyError(RuntimeError):
    """A stored token is encrypted under another key (TOKEN_ENCRYPTION_KEY or SECRET_KEY changed)."""


@dataclass(frozen=True)
class TokenInfo:
    """A token row with its values decrypted."""

    orcid: str
    access_token: str
    refresh_token: str | None
    scope: str
    expiration: datetime
    created: datetime
    name: str
    deleted: datetime | None = None
    deleted_reason: str | None = None

    def __repr__(self) -> str:  # keep token values out of logs and tracebacks
        return f"TokenInfo(orcid={self.orcid!r}, scope={self.scope!r}, expiration={self.expiration!r})"

    @property
    def scopes(self) -> set[str]:
        return set(self.scope.split())


@dataclass(frozen=True)
class ReconsentNeeded:
    """A person whose token ORCID refused and who has granted no live token since."""

    orcid: str
    name: str
    reason: str
    retired: datetime


def can_update(scope: str, item_type: str = "work") -> bool:
    """True when `scope` lets IOI write that item type (`work`, `employment`, `education`):
    `/activities/update`, or the legacy `/orcid-works/create` (works) or `/affiliations/create`."""
    scopes = set((scope or "").split())
    return UPDATE_SCOPE in scopes or LEGACY_SCOPES.get(item_type, "") in scopes


def encrypt(settings: Settings, value: str) -> str:
    return Fernet(settings.token_key).encrypt(value.encode()).decode()


def decrypt(settings: Settings, stored: str | None) -> str | None:
    """The plain value of a stored token: decrypted, or as it is for a legacy plain row."""
    if stored is None or not FERNET_SHAPE.match(stored):
        return stored
    try:
        return Fernet(settings.token_key).decrypt(stored.encode()).decode()
    except InvalidToken:
        raise TokenKeyError("a stored ORCID token does not decrypt: was TOKEN_ENCRYPTION_KEY changed?") from None


def is_encrypted(stored: str | None) -> bool:
    return stored is not None and bool(FERNET_SHAPE.match(stored))


def _info(settings: Settings, row: Token) -> TokenInfo:
    return TokenInfo(
        orcid=row.orcid,
        access_token=decrypt(settings, row.access_token) or "",
        refresh_token=decrypt(settings, row.refresh_token),
        scope=row.scope,
        expiration=row.expiration,
        created=row.created,
        name=row.name,
        deleted=row.deleted,
        deleted_reason=row.deletedReason,
    )


def _live_rows(orcid: str) -> list[Token]:
    query = (
        select(Token)
        .where(Token.orcid == orcid, Token.deleted.is_(None))
        .order_by(Token.created.desc(), Token.expiration.desc())
    )
    return list(db.session.scalars(query))


def store_token(settings: Settings, response: dict, now: datetime) -> TokenInfo:
    """Store a token from an OAuth token response (access_token, refresh_token, expires_in, scope,
    name, orcid), encrypted; expiration = now + expires_in. A live row already holding the same
    access token is rewritten instead of duplicated. Returns the stored token."""
    access = str(response["access_token"])
    refresh = response.get("refresh_token")
    orcid = str(response["orcid"])
    values = {
        "access_token": encrypt(settings, access),
        "refresh_token": encrypt(settings, str(refresh)) if refresh else None,
        "expiration": now + timedelta(seconds=int(response.get("expires_in") or 0)),
        "scope": " ".join(str(response.get("scope") or "").split())[:200],
        "orcid": orcid,
        "name": str(response.get("name") or "")[:100],
        "created": now,
        "deleted": None,
        "deletedReason": None,
    }
    for row in _live_rows(orcid):
        if decrypt(settings, row.access_token) == access:
            db.session.execute(update(Token).where(Token.access_token == row.access_token).values(**values))
            break
    else:
        db.session.add(Token(**values))
    db.session.flush()
    return TokenInfo(
        orcid=orcid,
        access_token=access,
        refresh_token=str(refresh) if refresh else None,
        scope=values["scope"],
        expiration=values["expiration"],
        created=now,
        name=values["name"],
    )


def live_tokens(settings: Settings, orcid: str) -> list[TokenInfo]:
    """Every token of that iD not retired (expired ones included), newest first."""
    return [_info(settings, row) for row in _live_rows(orcid)]


def live_token(settings: Settings, orcid: str, now: datetime) -> TokenInfo | None:
    """The newest token of that iD that is neither retired nor expired, or None."""
    for row in _live_rows(orcid):
        if row.expiration > now:
            return _info(settings, row)
    return None


def live_token_orcids(now: datetime) -> list[str]:
    """The iDs that have a live, unexpired token (one query)."""
    query = (
        select(Token.orcid)
        .where(Token.deleted.is_(None), Token.expiration > now)
        .group_by(Token.orcid)
        .order_by(Token.orcid)
    )
    return list(db.session.scalars(query))


def retire_tokens(
    settings: Settings, orcid: str, reason: str, now: datetime, *, access_token: str | None = None
) -> list[TokenInfo]:
    """Mark the live tokens of that iD deleted with `reason` (only the one holding `access_token`
    when given); legacy plain values are encrypted as the rows are rewritten. Returns the retired
    tokens decrypted, so the caller can revoke them at ORCID."""
    retired = []
    for row in _live_rows(orcid):
        info = _info(settings, row)
        if access_token is not None and info.access_token != access_token:
            continue
        values: dict = {"deleted": now, "deletedReason": reason[:100]}
        if not is_encrypted(row.access_token):
            values["access_token"] = encrypt(settings, info.access_token)
        if row.refresh_token and not is_encrypted(row.refresh_token):
            values["refresh_token"] = encrypt(settings, row.refresh_token)
        db.session.execute(update(Token).where(Token.access_token == row.access_token).values(**values))
        retired.append(info)
    db.session.expire_all()
    return retired


def encrypt_legacy_tokens(settings: Settings) -> int:
    """Encrypt every plain token value left by the PHP IOI; returns the rows rewritten."""
    rows = db.session.execute(select(Token.access_token, Token.refresh_token)).all()
    count = 0
    for access, refresh in rows:
        values = {}
        if not is_encrypted(access):
            values["access_token"] = encrypt(settings, access)
        if refresh and not is_encrypted(refresh):
            values["refresh_token"] = encrypt(settings, refresh)
        if values:
            db.session.execute(update(Token).where(Token.access_token == access).values(**values))
            count += 1
    db.session.expire_all()
    return count


def people_needing_reconsent(now: datetime | None = None) -> list[ReconsentNeeded]:
    """People whose newest retired token was retired because ORCID refused it (invalid_token,
    invalid_scope, insufficient_scope) and who have no live token (unexpired at `now` when given),
    for the admin's re-consent invitations; newest first. A person who later disconnected on
    purpose is not listed: only the newest retired token counts."""
    live = aliased(Token)
    live_condition = and_(live.orcid == Token.orcid, live.deleted.is_(None))
    if now is not None:
        live_condition = and_(live_condition, live.expiration > now)
    newest = (
        select(Token.orcid, func.max(Token.deleted).label("retired"))
        .where(Token.deleted.is_not(None), ~exists().where(live_condition))
        .group_by(Token.orcid)
        .subquery()
    )
    query = (
        select(Token.orcid, Token.name, Token.deletedReason, Token.deleted)
        .join(newest, and_(newest.c.orcid == Token.orcid, newest.c.retired == Token.deleted))
        .where(Token.deletedReason.in_(INVALID_REASONS))
        .order_by(Token.deleted.desc(), Token.orcid)
    )
    found: dict[str, ReconsentNeeded] = {}
    for orcid, name, reason, retired in db.session.execute(query):
        found.setdefault(orcid, ReconsentNeeded(orcid, name, reason, retired))
    return list(found.values())
