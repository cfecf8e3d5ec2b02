"""Write researchers' ORCID iDs back to DSpace author values (task updateORCIDiDsInDSpace).

For works a researcher selected since the last run, their author value in DSpace gets the iD
(`Name::orcid`, the Atmire patch's write format); for works they ignored since then, a value
carrying their iD is written back as the bare `Name` (DSpace then links it to a non-ORCID
authority). A `dc.description.provenance` entry records the change.

DSpace's `PUT items/{id}/metadata` deletes every value of each key sent before appending the body,
so only the keys that change are sent, each with all its values in their order: the author field
(values re-sent as read keep their authority) and the provenance field. Provenance is hidden from
anonymous readers and DSpace answers a lost session as anonymous, so the item is read just before
the PUT, and if the PUT is refused the client logs in again and the whole read-change-write is
redone (never re-sending what an anonymous read gave). The item is then re-harvested.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select

from ioi.clients.dspace import DSpaceAuthError, DSpaceClient, DSpaceError
from ioi.config import Settings
from ioi.extensions import db
from ioi.models import Orcid
from ioi.services import task_state
from ioi.services.harvest import SOURCE, harvest_handles, split_authority
from ioi.services.metadata_store import read_source_data
from ioi.services.name_fix import authority_keys
from ioi.services.people import read_person
from ioi.services.reports import last_run
from ioi.services.selections import choices_since
from ioi.taskframe import TaskContext

log = logging.getLogger(__name__)

PROCESS = "updateORCIDiDsInDSpace"
PROVENANCE = "dc.description.provenance"
WORK_PREFIX = "repository_"
STATE_SINCE = "ioi.writeback.since"
COUNTERS = ("marked as new", "ORCID iD added", "marked as ignored", "ORCID iD removed", "unchanged", "skipped")
MAX_CONSECUTIVE_FAILURES = 5
Outcome = Literal["added", "removed", "unchanged", "not found", "other iD"]


@dataclass(frozen=True)
class Person:
    """Whose iD is written: the iD, the names their author values may carry, the authority keys known for it."""

    orcid: str
    name: str
    names: tuple[str, ...]
    keys: frozenset[str] = frozenset()


@dataclass
class Plan:
    """What one item needs: the outcome and, when something changes, the entries to PUT."""

    outcome: Outcome
    entries: list[dict[str, Any]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # "field[place]: old → new", for the report


def _normal(name: str) -> str:
    return " ".join(name.replace(".", " ").split()).casefold()


def provenance_text(person: Person, settings: Settings, when: datetime, added: bool) -> str:
    """The provenance entry of one change (the PHP IOI's wording)."""
    change = f"ORCID iD added to {person.name}" if added else f"ORCID iD removed by {person.name}"
    return (
        f"Record metadata updated via REST API by {person.name} using the {settings.IR_EMAIL} user account "
        f"on {when.strftime('%Y-%m-%d %H:%M:%S')} - {change} ({person.orcid})."
    )


def plan_change(metadata: list[dict[str, Any]], fields: list[str], person: Person, add: bool, provenance: str) -> Plan:
    """Decide the change on an item's metadata (as read from DSpace) and build the PUT body.

    Adding: nothing to do if a value already carries the iD; else the values linked to one of the
    person's authority keys, else those with the person's name, that carry no iD, get `Name::orcid`.
    Removing: every value carrying the iD becomes `Name`.
    """
    names = {_normal(n) for n in person.names if n}
    new_values: dict[int, str] = {}
    other_id = False
    if add:
        if any(e["key"] in fields and split_authority(str(e.get("value") or ""))[2] == person.orcid for e in metadata):
            return Plan("unchanged")
        by_key, by_name = [], []
        for index, entry in enumerate(metadata):
            if entry["key"] not in fields:
                continue
            name, key, orcid = split_authority(str(entry.get("value") or ""))
            if orcid:
                other_id = other_id or _normal(name) in names
                continue
            if key and key in person.keys:
                by_key.append((index, name))
            elif _normal(name) in names:
                by_name.append((index, name))
        for index, name in by_key or by_name:
            new_values[index] = f"{name}::{person.orcid}"
        if not new_values:
            return Plan("other iD" if other_id else "not found")
    else:
        for index, entry in enumerate(metadata):
            name, _, orcid = split_authority(str(entry.get("value") or ""))
            if entry["key"] in fields and orcid == person.orcid:
                new_values[index] = name
        if not new_values:
            return Plan("unchanged")

    changed_keys = {metadata[i]["key"] for i in new_values} | {PROVENANCE}
    entries = []
    for index, entry in enumerate(metadata):
        if entry["key"] in changed_keys:
            entries.append(
                {
                    "key": entry["key"],
                    "value": new_values.get(index, entry.get("value")),
                    "language": entry.get("language"),
                }
            )
    entries.append({"key": PROVENANCE, "value": provenance, "language": "en"})
    places: dict[str, int] = {}
    changed = []
    for index, entry in enumerate(metadata):
        places[entry["key"]] = places.get(entry["key"], 0) + 1
        if index in new_values:
            changed.append(f"{entry['key']}[{places[entry['key']]}]: {entry.get('value')!r} → {new_values[index]!r}")
    return Plan("added" if add else "removed", entries, changed)


def load_person(orcid: str) -> Person | None:
    """The person behind a live `orcids` row: local name (else the name ORCID gave) and known authority keys."""
    row = db.session.execute(select(Orcid).where(Orcid.orcid == orcid, Orcid.deleted.is_(None))).scalars().first()
    if row is None:
        return None
    local = read_person(row.localPersonID)
    name = (local.name if local and local.name else row.name) or ""
    names = tuple(dict.fromkeys(n for n in (name, row.name) if n))
    return Person(orcid, name, names, frozenset(authority_keys(orcid)))


def update_item(
    settings: Settings, client: DSpaceClient, handle: str, person: Person, add: bool, now: datetime, dry_run: bool
) -> Plan:
    """Read the item, plan the change, PUT it (redoing the read once if the session was lost), re-harvest."""
    provenance = provenance_text(person, settings, now, add)
    for attempt in (1, 2):
        item = client.get_item_by_handle(handle)
        plan = plan_change(item.metadata, settings.orcid_enabled_fields, person, add, provenance)
        if plan.outcome not in ("added", "removed") or dry_run:
            return plan
        try:
            client.put_item_metadata(item.item_id, plan.entries, relogin=False)
        except DSpaceAuthError:
            if attempt == 2:
                raise
            client.login()  # the session was lost: what was read may lack hidden fields; read again
            continue
        failed = harvest_handles(settings, client, [handle], now)
        if failed:
            log.warning("%s was updated in DSpace but not re-harvested; the next harvest will", handle)
        return plan
    raise AssertionError("unreachable")  # pragma: no cover


def update_orcid_ids_in_dspace(ctx: TaskContext, *, client: DSpaceClient | None = None) -> None:
    """The updateORCIDiDsInDSpace task: add or remove iDs for the choices made since the last run."""
    report = ctx.report
    for counter in COUNTERS:
        report.count(counter, 0)
    settings = ctx.settings
    if settings.DSPACE_VERSION not in ("5", "6"):
        report.error(f"writing to DSpace {settings.DSPACE_VERSION} is not supported yet (DSpace 5 and 6 are)")
        return
    recorded = task_state.read_time(PROCESS, STATE_SINCE)
    since = recorded or last_run(PROCESS)  # a database from the PHP IOI: the choices since its last run
    work = [(when, orcid, local_id, True) for orcid, local_id, when in choices_since("work", "selected", since)]
    work += [(when, orcid, local_id, False) for orcid, local_id, when in choices_since("work", "ignored", since)]
    work.sort(key=lambda w: w[0])
    report.log(f"{len(work)} choices since {since or 'the start'}")
    if work and recorded is None:  # so a first run that crashes leaves these choices to the next one
        task_state.write_time(PROCESS, STATE_SINCE, work[0][0], ctx.now)
        ctx.commit()
    client = client or DSpaceClient.from_settings(settings)
    failed_at: list[datetime] = []
    in_a_row = 0
    try:
        if work:
            try:
                client.login()
            except DSpaceError as exc:
                report.error(f"DSpace: {exc}; the next run retries these choices")
                failed_at.extend(w[0] for w in work)  # recorded below: the next run starts at the first of them
                work = []
        for done, (when, orcid, local_id, add) in enumerate(work, start=1):
            report.count("marked as new" if add else "marked as ignored")
            handle = local_id.removeprefix(WORK_PREFIX)
            person = load_person(orcid)
            reason = None
            if not local_id.startswith(WORK_PREFIX):
                reason = "not a repository work"
            elif person is None:
                reason = "no live ORCID iD record"
            elif not read_source_data(SOURCE, [handle]):
                reason = "not in the harvested repository (deleted or withdrawn)"
            if reason:
                report.count("skipped")
                report.log(f"{local_id} ({orcid}): skipped, {reason}")
                continue
            try:
                plan = update_item(settings, client, handle, person, add, ctx.now, ctx.dry_run)
            except DSpaceError as exc:
                report.count("skipped")
                report.error(f"{handle} ({orcid}): {exc}")
                failed_at.append(when)
                in_a_row += 1
                if in_a_row >= MAX_CONSECUTIVE_FAILURES:
                    report.error(f"stopped after {in_a_row} failures in a row; the next run retries")
                    failed_at.extend(w[0] for w in work[done:])
                    break
                continue
            in_a_row = 0
            _count(ctx, handle, orcid, add, plan)
            ctx.commit()
            ctx.progress(done, len(work))
    finally:
        client.close()
    # The next run starts at this run's start, or at the first choice that failed, so none is lost.
    task_state.write_time(PROCESS, STATE_SINCE, min([ctx.now, *failed_at]), ctx.now)
    ctx.commit()


def _count(ctx: TaskContext, handle: str, orcid: str, add: bool, plan: Plan) -> None:
    report = ctx.report
    if plan.outcome in ("added", "removed"):
        report.count("ORCID iD added" if add else "ORCID iD removed")
        verb, done = ("add", "added") if add else ("remove", "removed")
        for line in plan.changed:
            if ctx.dry_run:
                ctx.would(f"{verb} {orcid} on {handle}: {line}")
            else:
                report.log(f"{handle}: {done} {orcid}: {line}")
    elif plan.outcome == "unchanged":
        report.count("unchanged")
    else:
        report.count("skipped")
        reason = "no author value matches the person" if plan.outcome == "not found" else "the author has another iD"
        report.log(f"{handle}: {orcid} not {'added' if add else 'removed'}: {reason}")
