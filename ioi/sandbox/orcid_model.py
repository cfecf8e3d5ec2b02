"""The ORCID simulator's records (clients, researchers, tokens, codes, calls) and shared constants."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request

EXPIRES_IN = 631138518
CODE_LIFETIME = 1440 * 60
SCOPES = frozenset({"/authenticate", "openid", "/read-public", "/read-limited", "/activities/update", "/person/update"})
MEMBER_SCOPES = frozenset({"/read-limited", "/activities/update", "/person/update"})
READ_SCOPES = SCOPES - {"/person/update"}


@dataclass
class Client:
    """A registered API client."""

    client_id: str
    client_secret: str
    redirect_uris: list[str]
    name: str = "IOI test client"
    member: bool = True


@dataclass
class Researcher:
    """A sandbox ORCID record holder."""

    orcid: str
    given_names: str
    family_names: str
    email: str | None = None
    default_visibility: str = "public"

    @property
    def name(self) -> str:
        return f"{self.given_names} {self.family_names}".strip()


@dataclass
class Token:
    """An access/refresh token pair issued to a client for one record."""

    access_token: str
    refresh_token: str
    client_id: str
    orcid: str | None
    scopes: list[str]
    expires_at: float
    revoked: bool = False
    revoked_by_user: bool = False  # ORCID quirk: still accepted for DELETE
    code: str | None = None

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


@dataclass
class Grant:
    """An authorization code waiting to be exchanged."""

    code: str
    client_id: str
    orcid: str
    scopes: list[str]
    redirect_uri: str
    created: float
    used: bool = False


@dataclass
class Call:
    """One request the simulator received (admin calls are not logged)."""

    method: str
    path: str
    status: int | None
    client_id: str | None
    at: float


def note_client(client_id: str | None) -> None:
    """Tell the call log which client made the current request."""
    meta = request.environ.get("ioi.meta")
    if meta is not None:
        meta["client_id"] = client_id
