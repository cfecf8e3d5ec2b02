"""Invitation emails: who gets which invitation, the templates, and batches sent over SMTP.

Only active people are invited (a position that has started and has no end date) who have an
email address. Each is in one group (see services.groups) and at most one invitation type:

- `initial`: no ORCID iD and never sent an invitation;
- `followup`: no ORCID iD, sent an invitation before;
- `noPermissions`: ORCID iD known, no live token, and none retired as invalid;
- `reconsent`: ORCID iD known, no live token, and the newest retired token was retired as invalid
  (`tokens.deletedReason` is one of `tokens.INVALID_REASONS`: what ORCID answered when refusing it).

A sent invitation is recorded in the metadata store as `ioi.email.sent` (value: the date) under the
recipient's address (source `ioi`), with a child `ioi.email.type`. A batch holds the unique
`emailBatches.runLock` while it runs, so a second batch (a double click, another admin, another
web worker) is refused; and a person already sent that invitation type today is skipped.
"""

from __future__ import annotations

import html
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser

from flask import Flask
from markupsafe import escape
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from ioi.config import Settings
from ioi.extensions import db
from ioi.mail import MailError, build_message, send
from ioi.models import EmailBatch, EmailTemplate, Metadata, Orcid
from ioi.services import tokens
from ioi.services.groups import group_labels, group_of, load_groups, person_titles
from ioi.services.metadata_store import Value, read_record, write_record
from ioi.services.people import name_parts

log = logging.getLogger(__name__)

SOURCE = "ioi"
SENT_FIELD = "ioi.email.sent"
TYPE_FIELD = "ioi.email.type"
LOCK = "send"
INVITE_TYPES = ("initial", "followup", "noPermissions", "reconsent")
TEMPLATE_LABELS = ("membership", *INVITE_TYPES)
HOW_CHOSEN = {
    "initial": "Active people with an email address, no ORCID iD known, and never sent an invitation.",
    "followup": "Active people with an email address, no ORCID iD known, already sent an invitation.",
    "noPermissions": "Active people whose ORCID iD is known but who have no live permission token "
    "(and whose last token was not retired as invalid).",
    "reconsent": "Active people whose ORCID iD is known and whose last token was retired as invalid "
    "(revoked at ORCID or no longer accepted): they are asked to grant permission again.",
}
PLACEHOLDERS = (
    "givenName",
    "sender",
    "INSTITUTION_ABBREVIATION",
    "ORCID_LINK_BASE_URL",
    "LOCAL_TRAINING_URL",
    "LOCAL_LIBGUIDE_URL",
    "OAUTH_REDIRECT_URI",
    "ORCID",
)
DEFAULT_RECONSENT = (
    "<html>\n<body>\n<p>Dear {{givenName}},</p>\n"
    '<p>You connected your ORCID iD <a href="{{ORCID_LINK_BASE_URL}}{{ORCID}}">{{ORCID}}</a> to '
    "{{INSTITUTION_ABBREVIATION}}, but the permission you gave us no longer works: it was revoked at ORCID "
    "or has expired. We can no longer keep your ORCID record up to date with your affiliation and "
    "repository publications.</p>\n"
    '<p>If you would like us to continue, please sign in to <a href="{{OAUTH_REDIRECT_URI}}">ORCID at '
    "{{INSTITUTION_ABBREVIATION}}</a> and grant permission again.</p>\n"
    '<p>Questions? Our <a href="{{LOCAL_LIBGUIDE_URL}}">ORCID guide</a> can help, or simply reply to this '
    "message.</p>\n<p>Best regards,<br>{{sender}}<br>for the {{INSTITUTION_ABBREVIATION}} Library</p>\n"
    "</body>\n</html>"
)
SAMPLE = {"givenName": "Jane", "ORCID": "0000-0002-1825-0097"}


class BatchRunning(RuntimeError):
    """Another batch holds the lock."""

    def __init__(self, batch: EmailBatch | None):
        super().__init__("another batch of invitations is being sent")
        self.batch = batch


@dataclass(frozen=True)
class Invitee:
    person_id: str
    name: str
    email: str
    group: str
    orcid: str | None = None

    @property
    def given_name(self) -> str:
        return first_given_name(self.name)


def first_given_name(name: str) -> str:
    """'Smith, Jane A.' → 'Jane'; the whole name when it has no given part."""
    surname, given = name_parts(name)
    return (given.split() or [surname])[0] if (given or surname) else ""


# --- who is invited ---------------------------------------------------------------------------


def _people() -> dict[str, dict[str, str]]:
    """`person_{id}` → {name, email} of every local person (one query)."""
    rows = db.session.execute(
        select(Metadata.idInSource, Metadata.field, Metadata.value).where(
            Metadata.source == "local",
            Metadata.field.in_(["local.person.name", "local.person.email"]),
            Metadata.parentRowID.is_(None),
            Metadata.deleted.is_(None),
            Metadata.place == 1,
        )
    )
    people: dict[str, dict[str, str]] = defaultdict(dict)
    for key, name, value in rows:
        people[key][name.rsplit(".", 1)[-1]] = value
    return people


def sent_invitations() -> dict[str, list[tuple[str, str]]]:
    """Lower-cased address → [(date sent, invitation type or "")] (one query)."""
    sent, kind = aliased(Metadata), aliased(Metadata)
    rows = db.session.execute(
        select(sent.idInSource, sent.value, kind.value)
        .outerjoin(kind, (kind.parentRowID == sent.rowID) & (kind.field == TYPE_FIELD) & kind.deleted.is_(None))
        .where(sent.source == SOURCE, sent.field == SENT_FIELD, sent.deleted.is_(None))
    )
    result: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for address, day, invite_type in rows:
        result[address.lower()].append((day, invite_type or ""))
    return result


def _token_states(now: datetime) -> tuple[set[str], set[str]]:
    """(ORCID iDs with a live token, ORCID iDs whose newest retired token was retired as invalid)."""
    live = set(tokens.live_token_orcids(now))
    invalid = {needed.orcid for needed in tokens.people_needing_reconsent(now)}
    return live, invalid


def invitation_lists(now: datetime) -> dict[tuple[str, str], list[Invitee]]:
    """(group, invitation type) → the people it would go to now, sorted by name (a few queries)."""
    groups = load_groups()
    titles = person_titles(now.date())
    people = _people()
    orcids = {
        f"person_{pid}": orcid
        for pid, orcid in db.session.execute(
            select(Orcid.localPersonID, Orcid.orcid).where(Orcid.deleted.is_(None)).order_by(Orcid.added)
        )
    }
    live, invalid = _token_states(now)
    sent = sent_invitations()
    lists: dict[tuple[str, str], list[Invitee]] = {(g, t): [] for g in group_labels(groups) for t in INVITE_TYPES}
    for key, person in titles.items():
        info = people.get(key, {})
        email = (info.get("email") or "").strip().lower()
        if not person.is_active or "@" not in email:
            continue
        orcid = orcids.get(key)
        if orcid is None:
            invite_type = "followup" if sent.get(email) else "initial"
        elif orcid in live:
            continue
        else:
            invite_type = "reconsent" if orcid in invalid else "noPermissions"
        group = group_of(person.active, groups)
        person_id = key.removeprefix("person_")
        lists[(group, invite_type)].append(Invitee(person_id, info.get("name", ""), email, group, orcid))
    for invitees in lists.values():
        invitees.sort(key=lambda i: (i.name.lower(), i.email))
    return lists


# --- templates --------------------------------------------------------------------------------


def get_template(label: str) -> str:
    """The newest saved text of a template (the built-in one for `reconsent` if never saved)."""
    text = db.session.execute(
        select(EmailTemplate.template)
        .where(EmailTemplate.label == label)
        .order_by(EmailTemplate.templateID.desc())
        .limit(1)
    ).scalar()
    if text is None and label == "reconsent":
        return DEFAULT_RECONSENT
    return text or ""


def save_template(label: str, text: str, now: datetime) -> None:
    """Save a new version of a template (earlier versions stay in the table); the caller commits."""
    if label not in TEMPLATE_LABELS:
        raise ValueError(f"unknown template {label!r}")
    db.session.add(EmailTemplate(label=label, template=text, lastUpdated=now))


def placeholder_values(settings: Settings, given_name: str, sender: str, orcid: str | None) -> dict[str, str]:
    return {
        "givenName": given_name,
        "sender": sender,
        "INSTITUTION_ABBREVIATION": settings.INSTITUTION_ABBREVIATION,
        "ORCID_LINK_BASE_URL": settings.ORCID_LINK_BASE_URL or "",
        "LOCAL_TRAINING_URL": settings.LOCAL_TRAINING_URL,
        "LOCAL_LIBGUIDE_URL": settings.LOCAL_LIBGUIDE_URL,
        "OAUTH_REDIRECT_URI": settings.OAUTH_REDIRECT_URI,
        "ORCID": orcid or "",
    }


def render(template: str, values: dict[str, str]) -> str:
    """Replace `{{name}}` placeholders with HTML-escaped values; the template's own HTML is kept."""
    text = template
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", str(escape(value)))
    return text


class _TextOf(HTMLParser):
    """Plain-text alternative of an HTML email: paragraphs kept, links as 'text (url)'."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag):
        if tag == "a" and self.links:
            href = self.links.pop()
            if href:
                self.parts.append(f" ({href})")
        if tag in {"p", "div", "h1", "h2", "h3", "h4"}:
            self.parts.append("\n")

    def handle_data(self, data):
        self.parts.append(" ".join(data.split()) if data.strip() else (" " if data else ""))


def html_to_text(document: str) -> str:
    parser = _TextOf()
    parser.feed(document)
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return html.unescape(text).strip() + "\n"


def subject(settings: Settings, invite_type: str) -> str:
    base = f"ORCID at {settings.INSTITUTION_ABBREVIATION}"
    return f"Reminder: {base}" if invite_type == "followup" else base


def compose(settings: Settings, invite_type: str, invitee: Invitee, sender: str, template: str, to: str | None = None):
    """The email for one invitee (to `to` instead, without CC, for a test)."""
    body = render(template, placeholder_values(settings, invitee.given_name, sender, invitee.orcid))
    title = subject(settings, invite_type)
    if to is not None:
        return build_message(settings, to, f"[Test] {title}", html_to_text(body), html=body)
    return build_message(settings, invitee.email, title, html_to_text(body), html=body, cc=[settings.IR_EMAIL])


# --- sending ----------------------------------------------------------------------------------


def send_test(settings: Settings, group: str, invite_type: str, sender: str, now: datetime) -> Invitee:
    """Send one invitation of this kind to IR_EMAIL only (the first person on the list, or a sample)."""
    invitees = invitation_lists(now).get((group, invite_type))
    if invitees is None:
        raise ValueError("unknown group or invitation type")
    invitee = invitees[0] if invitees else Invitee("", "Sample, " + SAMPLE["givenName"], "", group, SAMPLE["ORCID"])
    send(settings, compose(settings, invite_type, invitee, sender, get_template(invite_type), to=settings.IR_EMAIL))
    return invitee


def stale_after(settings: Settings) -> timedelta:
    """A running batch with no heartbeat for this long is taken as dead (its process stopped)."""
    return timedelta(seconds=max(300, 20 * settings.EMAIL_SEND_DELAY))


def start_batch(
    settings: Settings, group: str, invite_type: str, sent_by: str, now: datetime
) -> tuple[EmailBatch, list[Invitee]]:
    """Take the lock and record a new batch; returns it with its recipients. Raises BatchRunning.

    Commits, so other requests and workers see the lock at once.
    """
    invitees = invitation_lists(now).get((group, invite_type))
    if invitees is None:
        raise ValueError("unknown group or invitation type")
    if not invitees:
        raise ValueError("nobody is on this list")
    db.session.execute(
        update(EmailBatch)
        .where(EmailBatch.runLock.is_not(None), EmailBatch.heartbeat < now - stale_after(settings))
        .values(runLock=None, status="abandoned", finished=now)
    )
    db.session.commit()
    batch = EmailBatch(
        groupLabel=group,
        inviteType=invite_type,
        sentBy=sent_by,
        started=now,
        heartbeat=now,
        status="running",
        total=len(invitees),
        sent=0,
        skipped=0,
        failed=0,
        runLock=LOCK,
    )
    db.session.add(batch)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise BatchRunning(running_batch()) from None
    return batch, invitees


def _sent_today(address: str, invite_type: str, day: str) -> bool:
    return (day, invite_type) in set(sent_invitations_for(address))


def sent_invitations_for(address: str) -> list[tuple[str, str]]:
    """[(date, type)] already recorded for one address."""
    record = read_record(SOURCE, address.lower())
    return [(v.value, v.children.get(TYPE_FIELD, [Value("")])[0].value) for v in record.get(SENT_FIELD, [])]


def record_sent(address: str, invite_type: str, now: datetime) -> None:
    """Add an `ioi.email.sent` value (today's date, with the type) under the address; caller commits."""
    record = read_record(SOURCE, address.lower())
    values: list[Value | str] = list(record.get(SENT_FIELD, []))
    values.append(Value(now.date().isoformat(), {TYPE_FIELD: [invite_type]}))
    write_record(SOURCE, address.lower(), {**record, SENT_FIELD: values}, now)


def run_batch(
    settings: Settings,
    batch_id: int,
    invitees: list[Invitee],
    sender: str,
    clock: Callable[[], datetime] = datetime.now,
    sleep: Callable[[float], None] = time.sleep,
) -> EmailBatch:
    """Send the batch one email at a time, pausing EMAIL_SEND_DELAY between emails; commits each.

    Each sent email is recorded before the next is sent, so a crash loses nothing and a re-run
    skips whoever was already sent this invitation today. Releases the lock however it ends.
    """
    batch = db.session.get(EmailBatch, batch_id)
    assert batch is not None
    template = get_template(batch.inviteType)
    first = True
    try:
        for invitee in invitees:
            now = clock()
            if _sent_today(invitee.email, batch.inviteType, now.date().isoformat()):
                batch.skipped += 1
            else:
                if not first and settings.EMAIL_SEND_DELAY:
                    sleep(settings.EMAIL_SEND_DELAY)
                first = False
                try:
                    send(settings, compose(settings, batch.inviteType, invitee, sender, template))
                except MailError as exc:
                    batch.failed += 1
                    batch.lastError = f"{invitee.email}: {exc}"
                    log.warning("invitation to %s not sent: %s", invitee.email, exc)
                else:
                    record_sent(invitee.email, batch.inviteType, clock())
                    batch.sent += 1
            batch.heartbeat = clock()
            db.session.commit()
        batch.status = "finished"
    except Exception as exc:
        db.session.rollback()
        batch = db.session.get(EmailBatch, batch_id)
        batch.status = "failed"
        batch.lastError = str(exc)[:2000]
        log.exception("invitation batch %s stopped", batch_id)
    finally:
        batch.finished = clock()
        batch.runLock = None
        db.session.commit()
    return batch


def run_in_app(app: Flask, settings: Settings, batch_id: int, invitees: list[Invitee], sender: str) -> None:
    """Entry point for a background thread: run the batch inside its own app context."""
    with app.app_context():
        try:
            run_batch(settings, batch_id, invitees, sender)
        finally:
            db.session.remove()


def running_batch() -> EmailBatch | None:
    return db.session.execute(select(EmailBatch).where(EmailBatch.runLock.is_not(None))).scalars().first()


def batch_status(batch_id: int) -> dict | None:
    """Counters of one batch, for the progress display."""
    batch = db.session.get(EmailBatch, batch_id)
    if batch is None:
        return None
    db.session.refresh(batch)
    return {
        "id": batch.batchID,
        "group": batch.groupLabel,
        "type": batch.inviteType,
        "status": batch.status,
        "total": batch.total,
        "sent": batch.sent,
        "skipped": batch.skipped,
        "failed": batch.failed,
        "done": batch.sent + batch.skipped + batch.failed,
        "lastError": batch.lastError,
    }


def last_batches() -> dict[tuple[str, str], EmailBatch]:
    """(group, type) → its newest batch."""
    newest = (
        select(func.max(EmailBatch.batchID)).group_by(EmailBatch.groupLabel, EmailBatch.inviteType).scalar_subquery()
    )
    rows = db.session.execute(select(EmailBatch).where(EmailBatch.batchID.in_(newest))).scalars()
    return {(b.groupLabel, b.inviteType): b for b in rows}


@dataclass
class TableRow:
    group: str
    how_chosen: str
    cells: dict[str, tuple[list[Invitee], EmailBatch | None]]


def invitation_table(now: datetime) -> list[TableRow]:
    """The Send Emails table: each group (then Others) with its lists and last batch per type."""
    groups = load_groups()
    lists = invitation_lists(now)
    batches = last_batches()
    rules = {g.label: g.describe() for g in groups}
    rules["Others"] = "job titles matched by no group"
    return [
        TableRow(label, rules[label], {t: (lists[(label, t)], batches.get((label, t))) for t in INVITE_TYPES})
        for label in group_labels(groups)
    ]
