"""Who is signed in: the session contract shared by the researcher page and the admin area.

The session holds the campus identity of the signed-in person (set by `log_in` after an LDAP bind
or an SSO header check). Admin rights are read from `users` on every admin request, so removing
an admin takes effect at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from functools import wraps

from flask import abort, redirect, request, session, url_for
from sqlalchemy import select

from ioi.extensions import db
from ioi.models import User


@dataclass(frozen=True)
class Identity:
    """A campus person as the directory or the SSO provider describes them."""

    person_id: str
    email: str
    name: str
    title: str | None = None
    department: str | None = None
    start_date: date | None = None


def log_in(identity: Identity) -> None:
    """Start a fresh session for this person (a new session, so no fixation)."""
    session.clear()
    data = asdict(identity)
    data["start_date"] = identity.start_date.isoformat() if identity.start_date else None
    session["identity"] = data
    session.permanent = False


def log_out() -> None:
    session.clear()


def current_identity() -> Identity | None:
    data = session.get("identity")
    if not data:
        return None
    start = data.get("start_date")
    return Identity(**{**data, "start_date": date.fromisoformat(start) if start else None})


def is_admin(email: str | None) -> bool:
    """True when `users` lists this address with admin = 1."""
    if not email:
        return False
    admin = db.session.execute(select(User.admin).where(User.email == email.lower())).scalar()
    return admin == 1


def login_required(view):
    """Send anonymous visitors to the sign-in page, coming back here afterwards."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if current_identity() is None:
            return redirect(url_for("orcid.index", next=request.path))
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    """Only admins: anonymous visitors are sent to sign in, other people get 403."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        identity = current_identity()
        if identity is None:
            return redirect(url_for("orcid.index", next=request.path))
        if not is_admin(identity.email):
            abort(403)
        return view(*args, **kwargs)

    return wrapper
