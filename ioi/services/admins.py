"""Who may use the admin area: the `users` rows with admin = 1."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ioi.config import EMAIL
from ioi.extensions import db
from ioi.models import User


class AdminError(ValueError):
    """An admin change that cannot be made; the message says why."""


def normalise_email(email: str) -> str:
    """Trimmed, lower-cased address; raises AdminError when it is not an email address."""
    address = (email or "").strip().lower()
    if not EMAIL.match(address) or len(address) > 100:
        raise AdminError(f"“{email.strip()}” is not an email address.")
    return address


def list_admins() -> list[User]:
    """Admins by address."""
    return list(db.session.execute(select(User).where(User.admin == 1).order_by(User.email)).scalars())


def add_admin(email: str, now: datetime) -> str:
    """Make this address an admin (a new `users` row, or admin = 1 on an existing one); returns it."""
    address = normalise_email(email)
    user = db.session.execute(select(User).where(User.email == address)).scalar()
    if user is None:
        db.session.add(User(email=address, admin=1, added=now))
    elif user.admin == 1:
        raise AdminError(f"{address} is already an admin.")
    else:
        user.admin = 1
    return address


def remove_admin(email: str, acting_email: str) -> str:
    """Take admin rights away (the row stays, admin = 0); nobody can remove themselves."""
    address = (email or "").strip().lower()
    if address == (acting_email or "").strip().lower():
        raise AdminError("You cannot remove yourself; ask another admin.")
    user = db.session.execute(select(User).where(User.email == address, User.admin == 1)).scalar()
    if user is None:
        raise AdminError(f"{address} is not an admin.")
    user.admin = 0
    return address
