"""Campus sign-in for the researcher page: the directory (LDAP), SSO headers, the demo list.

Failed password logins are slowed down with a lockout window kept in the database, so every web
worker sees the same counts: each failure is a `messages` row under process `loginFailure`, one
with type `user` (the lower-cased username) and one with type `ip` (the client address). Past a few
failures within `WINDOW`, the next attempt is refused without asking the directory until an
exponentially growing delay has passed since the last failure. A successful login forgets that
username's failures; rows older than a day are purged as new ones are written. An unreachable
directory is written as a `directoryDown` row, which also limits the alert emails to one per window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select

from ioi.auth import Identity
from ioi.clients.ldap import (
    DirectoryConfig,
    DirectoryError,
    DirectoryPerson,
    DirectoryUnavailable,
    InvalidCredentials,
    authenticate,
)
from ioi.config import Settings
from ioi.extensions import db
from ioi.mail import MailError, build_message, send
from ioi.models import Message, Metadata

log = logging.getLogger(__name__)

FAILURE_PROCESS = "loginFailure"
DOWN_PROCESS = "directoryDown"
WINDOW = timedelta(minutes=15)
KEEP = timedelta(days=1)
FREE_ATTEMPTS = {"user": 3, "ip": 20}  # a campus NAT puts many people behind one address
MAX_DELAY = 15 * 60


class LoginFailed(Exception):
    """Sign-in did not succeed; `str(exc)` is the message for the person signing in."""


class BadCredentials(LoginFailed):
    """Wrong username or password (or no such account)."""


class TooManyAttempts(LoginFailed):
    """Too many recent failures for this username or address: wait `wait_seconds`."""

    def __init__(self, message: str, wait_seconds: int):
        super().__init__(message)
        self.wait_seconds = wait_seconds


class DirectoryDown(LoginFailed):
    """The directory could not be asked (unreachable or misconfigured); `detail` is for the team only."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail


class IncompleteIdentity(LoginFailed):
    """The directory or SSO provider knows the person but not their person id or email."""


def identity_from_directory(person: DirectoryPerson, settings: Settings) -> Identity:
    """The session identity of a directory entry; raises IncompleteIdentity without id or email."""
    if not person.person_id or not person.email:
        raise IncompleteIdentity(
            "Your campus account has no staff/student number or email address on record, so it cannot be "
            f"linked to ORCID here. Please contact {settings.IR_EMAIL}."
        )
    return Identity(
        person_id=person.person_id,
        email=person.email,
        name=person.name or person.email,
        title=person.title,
        department=person.department,
        start_date=person.start_date,
    )


def delay_for(failures: int, free: int) -> int:
    """Seconds to wait after `failures` recent failures: none for the first `free`, then doubling."""
    if failures < free:
        return 0
    return min(2 ** (failures - free + 1), MAX_DELAY)


def check_throttle(username: str, ip: str, now: datetime) -> None:
    """Raise TooManyAttempts while this username or address is in its lockout window (one statement)."""
    rows = db.session.execute(
        select(Message.type, func.count(), func.max(Message.timestamp))
        .where(
            Message.process == FAILURE_PROCESS,
            Message.timestamp >= now - WINDOW,
            or_(
                and_(Message.type == "user", Message.message == _user_key(username)),
                and_(Message.type == "ip", Message.message == ip),
            ),
        )
        .group_by(Message.type)
    ).all()
    wait = 0
    for kind, count, last in rows:
        delay = delay_for(count, FREE_ATTEMPTS[kind])
        if delay:
            wait = max(wait, int((last + timedelta(seconds=delay) - now).total_seconds()))
    if wait > 0:
        minutes = f"{(wait + 59) // 60} minutes" if wait > 90 else f"{wait} seconds"
        raise TooManyAttempts(f"Too many failed sign-in attempts. Please wait {minutes} and try again.", wait)


def record_failure(username: str, ip: str, now: datetime) -> None:
    """Count a failed password login for this username and address; purge rows older than a day."""
    db.session.execute(delete(Message).where(Message.process == FAILURE_PROCESS, Message.timestamp < now - KEEP))
    db.session.add_all(
        [
            Message(process=FAILURE_PROCESS, type="user", message=_user_key(username), timestamp=now),
            Message(process=FAILURE_PROCESS, type="ip", message=ip, timestamp=now),
        ]
    )
    db.session.flush()


def forget_failures(username: str) -> None:
    """After a successful login, this username starts again from no failures."""
    db.session.execute(
        delete(Message).where(
            Message.process == FAILURE_PROCESS, Message.type == "user", Message.message == _user_key(username)
        )
    )


def ldap_login(settings: Settings, username: str, password: str, ip: str, now: datetime) -> Identity:
    """Check a campus username and password against the directory; returns the person's identity.

    Raises TooManyAttempts, BadCredentials (the failure is counted), DirectoryDown or
    IncompleteIdentity. For DirectoryDown the caller calls `note_directory_down`, commits, then emails.
    """
    username = (username or "").strip()
    check_throttle(username, ip, now)
    try:
        config = DirectoryConfig.from_settings(settings)
        person = authenticate(config, username, password)
    except InvalidCredentials:
        record_failure(username, ip, now)
        raise BadCredentials("The username or password is not correct.") from None
    except (DirectoryUnavailable, DirectoryError, ValueError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        raise DirectoryDown(
            "The campus directory cannot be reached right now, so you cannot sign in. "
            f"The repository team has been told; please try again later or write to {settings.IR_EMAIL}.",
            detail,
        ) from None
    forget_failures(username)
    return identity_from_directory(person, settings)


def note_directory_down(detail: str, now: datetime) -> bool:
    """Record an outage; True when it is the first in WINDOW, so the team should be emailed. Flushes."""
    recent = db.session.execute(
        select(func.count()).where(Message.process == DOWN_PROCESS, Message.timestamp >= now - WINDOW)
    ).scalar()
    db.session.add(Message(process=DOWN_PROCESS, type="error", message=detail, timestamp=now))
    db.session.flush()
    return not recent


def email_directory_down(settings: Settings, detail: str, now: datetime) -> bool:
    """Tell IR_EMAIL that sign-in fails because of the directory; True when the email went out.

    The message says what failed and when, never who tried or with which password.
    """
    hosts = " ".join(settings.ldap_hosts) or "(none configured)"
    text = (
        f"Campus sign-in on the {settings.INSTITUTION_ABBREVIATION} ORCID page failed at {now:%Y-%m-%d %H:%M:%S} "
        f"because the directory could not be used.\n\nDirectory hosts: {hosts}\nError: {detail}\n\n"
        f"Researchers cannot sign in until this is fixed. Further failures in the next "
        f"{int(WINDOW.total_seconds() // 60)} minutes are recorded without another email."
    )
    message = build_message(settings, settings.IR_EMAIL, "ORCID page: campus directory unavailable", text)
    try:
        send(settings, message)
    except MailError as exc:
        log.error("could not email IR_EMAIL about the directory outage: %s", exc)
        return False
    return True


def identity_from_headers(settings: Settings, headers) -> Identity | None:
    """The identity a SAML/Shibboleth service provider put in the SSO_HEADER_* request headers.

    None when the person id header is absent. Raises IncompleteIdentity when it is there without
    an email. Only call this with IOI_AUTH=header, behind a web server that strips these headers
    from what clients send.
    """
    person_id = _header(headers, settings.SSO_HEADER_PERSON_ID)
    if not person_id:
        return None
    email = _header(headers, settings.SSO_HEADER_EMAIL).lower()
    if not email:
        raise IncompleteIdentity(
            f"Campus sign-in did not pass on your email address. Please contact {settings.IR_EMAIL}."
        )
    return Identity(
        person_id=person_id,
        email=email,
        name=_header(headers, settings.SSO_HEADER_NAME) or email,
        title=_header(headers, settings.SSO_HEADER_TITLE) or None,
        department=_header(headers, settings.SSO_HEADER_DEPARTMENT) or None,
        start_date=_parse_date(_header(headers, settings.SSO_HEADER_START_DATE)),
    )


def _header(headers, name: str) -> str:
    """One SSO attribute: the first of several `;`-separated values (Shibboleth's multi-value form),
    with UTF-8 restored (WSGI hands header bytes over as Latin-1)."""
    value = headers.get(name) or ""
    try:
        value = value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return value.split(";", 1)[0].strip()


@dataclass(frozen=True)
class DemoPerson:
    person_id: str
    name: str  # "Surname, Given"
    email: str | None


def demo_people(limit: int = 100) -> list[DemoPerson]:
    """Local people to sign in as in demo mode, by name (one statement)."""
    rows = db.session.execute(
        select(Metadata.idInSource, Metadata.field, Metadata.value).where(
            Metadata.source == "local",
            Metadata.idInSource.like("person\\_%", escape="\\"),
            Metadata.field.in_(["local.person.name", "local.person.email"]),
            Metadata.parentRowID.is_(None),
            Metadata.deleted.is_(None),
            Metadata.place == 1,
        )
    ).all()
    people: dict[str, dict[str, str]] = {}
    for key, field_name, value in rows:
        people.setdefault(key.removeprefix("person_"), {})[field_name] = value
    found = [
        DemoPerson(pid, values.get("local.person.name", pid), values.get("local.person.email"))
        for pid, values in people.items()
    ]
    return sorted(found, key=lambda p: p.name.casefold())[:limit]


def demo_identity(person_id: str) -> Identity | None:
    """The identity of a local person in demo mode, from their local record; None if unknown."""
    from ioi.services.people import read_person

    person = read_person(person_id)
    if person is None or not person.email:
        return None
    surname, _, given = person.name.partition(", ")
    titled = next((p for p in person.positions if p.title), None)
    return Identity(
        person_id=person.person_id,
        email=person.email,
        name=f"{given} {surname}".strip(),
        title=titled.title if titled else None,
        department=titled.org.name if titled and titled.org else None,
        start_date=_parse_date(titled.start_date if titled else None),
    )


def _user_key(username: str) -> str:
    return username.strip().lower()[:100]


def _parse_date(value: str | None) -> date | None:
    """A date from `YYYY-MM-DD` or a directory timestamp (`YYYYMMDD...`), else None."""
    value = (value or "").strip()
    try:
        if len(value) >= 10 and value[4] == "-":
            return date.fromisoformat(value[:10])
        if len(value) >= 8 and value[:8].isdigit():
            return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None
    return None
