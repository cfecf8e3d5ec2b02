"""syncAffiliationsToORCID: put researchers' positions at the institution on their ORCID records (§6.4).

For each person with a token (or the one `--orcid`), the positions looked at are those added, or
whose title or dates changed, since the last run (the PHP IOI looked at "this year"), plus the
positions already on ORCID (sent again only if their document changed, e.g. a new end date or
department name) and selected positions not yet on ORCID (a failed push is retried). Ignored
positions are not sent, and are deleted from ORCID if they are there. The organization carries the
institution's ROR id when set, else its Ringgold id. One position is one unit of work, pushed
through `OrcidWriter` (the researcher page's code path) and committed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import aliased

from ioi.clients.orcid import OrcidClient
from ioi.extensions import db
from ioi.models import Metadata, Orcid, Token
from ioi.orcid_documents import DocumentError, Organization
from ioi.services.orcid_api import make_client
from ioi.services.orcid_sync import (
    AFFILIATION_TYPES,
    OrcidWriter,
    affiliation_document,
    affiliation_items,
    live_put_code_ids,
)
from ioi.services.people import LocalPerson, Position, person_key, read_person, student_titles
from ioi.services.selections import live_choices
from ioi.services.tokens import can_update, live_token
from ioi.services.work_sync import record_complete_run, since_time
from ioi.taskframe import TaskContext

PROCESS = "syncAffiliationsToORCID"
DESCRIPTION = "Add and update researchers' affiliations with the institution on their ORCID records."

# Counter names of the PHP IOI (§6.4), plus the port's unchanged/removed counters.
ALL = "all"
NEW = "new"
UPDATED = "updated"
UNCHANGED = "unchanged"
NO_TOKEN = "skipped - no permission token"
NO_SCOPE = "skipped - no create or update scope"
IGNORED = "skipped - ignored affiliation"
FAILED_CREATE = "skipped - failed to create affiliation"
FAILED_UPDATE = "skipped - failed to update"
NO_TITLE = "skipped - no role-title"
REMOVED = "removed - ignored affiliation"


def people_with_tokens(orcid: str | None = None) -> list[tuple[str, int]]:
    """(ORCID iD, localPersonID) of known people holding a token not retired (one query)."""
    query = (
        select(Orcid.orcid, Orcid.localPersonID)
        .where(Orcid.deleted.is_(None), Orcid.orcid.in_(select(Token.orcid).where(Token.deleted.is_(None))))
        .order_by(Orcid.orcid)
    )
    if orcid:
        query = query.where(Orcid.orcid == orcid)
    return [(o, p) for o, p in db.session.execute(query)]


def changed_positions(since: datetime) -> set[tuple[str, str]]:
    """(person record key, personOrgRelation id) of live positions added, or with a child value
    (org, title, dates) added or deleted, since `since` (one query)."""
    child = aliased(Metadata)
    changed_child = exists().where(
        child.parentRowID == Metadata.rowID, or_(child.added >= since, child.deleted >= since)
    )
    query = select(Metadata.idInSource, Metadata.value).where(
        Metadata.source == "local",
        Metadata.field == "local.personOrgRelation.id",
        Metadata.deleted.is_(None),
        or_(Metadata.added >= since, changed_child),
    )
    return {(key, value) for key, value in db.session.execute(query)}


def sync_affiliations(ctx: TaskContext, client: OrcidClient | None = None) -> None:
    """The task: push each person's new or changed positions, count as §6.4."""
    if not ctx.settings.ORCID_MEMBER:
        ctx.report.log("ORCID_MEMBER is off: IOI does not write to ORCID records")
        return
    since = since_time(ctx, PROCESS)
    changed = changed_positions(since) if since is not None else None
    people = people_with_tokens(ctx.orcid)
    ctx.report.log(f"{len(people)} people with a permission token to look at")
    organization = Organization.from_settings(ctx.settings)
    students = student_titles()
    own_client = client is None
    client = client or make_client(ctx.settings, PROCESS)
    try:
        for done, (orcid, person_id) in enumerate(people, start=1):
            person = read_person(person_id)
            if person is not None:
                _sync_person(ctx, client, organization, students, orcid, person, changed)
            ctx.progress(done, len(people))
    finally:
        if own_client:
            client.close()
    record_complete_run(ctx, PROCESS)


def _sync_person(
    ctx: TaskContext,
    client: OrcidClient,
    organization: Organization,
    students: set[str],
    orcid: str,
    person: LocalPerson,
    changed: set[tuple[str, str]] | None,
) -> None:
    report = ctx.report
    token = live_token(ctx.settings, orcid, ctx.now)
    on_orcid = {(kind, local_id) for _, kind, local_id in live_put_code_ids(orcid, AFFILIATION_TYPES)}
    choices = {kind: live_choices(orcid, kind) for kind in AFFILIATION_TYPES}
    writer = OrcidWriter(ctx.settings, client, orcid, token, ctx.now, dry_run=ctx.dry_run) if token else None
    if writer is not None:
        writer.preload(*AFFILIATION_TYPES)
    key = person_key(person.person_id)
    for kind, local_id, position in affiliation_items(person, students):
        choice = choices[kind].get(local_id)
        is_on_orcid = (kind, local_id) in on_orcid
        moved = any((k, local_id) in on_orcid for k in AFFILIATION_TYPES if k != kind)
        wanted = (
            changed is None
            or (key, position.relation_id) in changed
            or is_on_orcid
            or moved
            or (choice == "selected" and not is_on_orcid)
        )
        if not wanted:
            continue
        report.count(ALL)
        if writer is None or token is None or writer.token_invalid:
            report.count(NO_TOKEN)
        elif not can_update(token.scope, kind):
            report.count(NO_SCOPE)
        elif choice == "ignored":
            report.count(IGNORED)
            if is_on_orcid:
                _remove(ctx, writer, orcid, kind, local_id)
        elif not (position.title or "").strip():
            report.count(NO_TITLE)
        else:
            if moved:  # the title moved it between employment and education: the old item goes
                _move(ctx, writer, orcid, next(k for k in AFFILIATION_TYPES if k != kind), local_id)
            _push(ctx, writer, organization, person, position, orcid, kind, local_id, is_on_orcid)
        ctx.commit()


def _push(
    ctx: TaskContext,
    writer: OrcidWriter,
    organization: Organization,
    person: LocalPerson,
    position: Position,
    orcid: str,
    kind: str,
    local_id: str,
    was_on_orcid: bool,
) -> None:
    report = ctx.report
    try:
        document = affiliation_document(person, position, organization, kind)
    except DocumentError as exc:
        report.count(FAILED_CREATE)
        report.log(f"{orcid} {local_id}: not sent, {exc}")
        return
    result = writer.push(kind, local_id, document)
    label = f"{kind} {position.title!r} ({local_id})"
    if result.status in ("added", "adopted"):
        report.count(NEW)
        ctx.note(f"add {label} to {orcid}", f"{orcid}: added {label}, put-code {result.put_code}")
    elif result.status == "updated":
        report.count(UPDATED)
        ctx.note(f"update {label} on {orcid}", f"{orcid}: updated {label}, put-code {result.put_code}")
    elif result.status in ("unchanged", "duplicate"):
        report.count(UNCHANGED)
    elif result.status == "token_invalid":
        report.count(NO_TOKEN)
        report.log(f"{orcid}: {result.message}")
    else:
        report.count(FAILED_UPDATE if was_on_orcid else FAILED_CREATE)
        report.error(f"{orcid} {local_id}: {result.message}")


def _remove(ctx: TaskContext, writer: OrcidWriter, orcid: str, kind: str, local_id: str) -> None:
    result = writer.remove(kind, local_id)
    if result.status == "deleted":
        ctx.report.count(REMOVED)
        ctx.note(f"delete {kind} {local_id} from {orcid}", f"{orcid}: deleted {kind} {local_id} (ignored)")
    elif result.status == "failed":
        ctx.report.error(f"{orcid} {local_id}: ORCID refused the removal: {result.message}")


def _move(ctx: TaskContext, writer: OrcidWriter, orcid: str, old_kind: str, local_id: str) -> None:
    """The title moved a position between employment and education: delete the old kind's item."""
    result = writer.remove(old_kind, local_id)
    if result.status == "deleted":
        ctx.note(
            f"delete {old_kind} {local_id} from {orcid}",
            f"{orcid}: deleted {old_kind} {local_id} (now other kind)",
        )
    elif result.status == "failed":
        ctx.report.error(f"{orcid} {local_id}: ORCID refused the removal of the {old_kind}: {result.message}")
