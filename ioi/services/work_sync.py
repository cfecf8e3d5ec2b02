"""syncWorksToORCID: keep researchers' ORCID records in step with their repository works (§6.2).

Which works a run looks at (pairs of ORCID iD and handle):
- items changed since the last run (or `--from-date`) whose author value carries an ORCID iD
  known in `orcids` (these go to ORCID unless the person ignored them, as in the PHP IOI);
- items changed since then that the person selected, or that are on ORCID already;
- selected items, and authority-linked items of people with a live token, not yet on ORCID
  (a failed push is retried by every run until it succeeds);
- ignored items still on ORCID (a failed delete from the researcher page is retried).
"Since the last run" starts an hour before the previous report, so an item harvested while that
run was going is not missed; looking at an unchanged item again costs no ORCID call.

Each item is one unit of work: pushed through `OrcidWriter` (the researcher page's code path) and
committed, so a run killed mid-way and rerun leaves no duplicate (a POST whose put-code was lost is
answered 409 and adopted). The task lock keeps two runs from overlapping.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta

from sqlalchemy import or_, select

from ioi.clients.orcid import OrcidClient
from ioi.extensions import db
from ioi.models import Metadata, Orcid, UserSelection
from ioi.orcid_documents import DocumentError
from ioi.services.orcid_api import make_client
from ioi.services.orcid_sync import (
    WORK,
    OrcidWriter,
    WorkMappings,
    handle_of,
    live_put_code_ids,
    load_work_mappings,
    read_items,
    work_document,
    work_local_id,
)
from ioi.services.reports import last_run
from ioi.services.selections import live_choices
from ioi.services.tokens import TokenInfo, can_update, live_token, live_token_orcids
from ioi.taskframe import TaskContext

PROCESS = "syncWorksToORCID"
DESCRIPTION = "Add and update researchers' repository works on their ORCID records."
OVERLAP = timedelta(hours=1)
READ_CHUNK = 500

# Counter names of the PHP IOI (§6.2), plus the port's removal and re-consent counters.
ALL = "all"
NEW = "new"
MODIFIED = "modified"
NO_TOKEN = "skipped - no permission token"
IGNORED = "ignored - user deselected"
NO_SCOPE = "skipped - no update scope"
IDENTICAL = "skipped - previously submitted XML was identical"
FAILED_UPDATE = "skipped - failed to update"
FAILED_CREATE = "failed to create work"
REMOVED = "removed - user deselected"
TOKEN_REFUSED = "skipped - token refused by ORCID"
NOT_HARVESTED = "skipped - no harvested metadata"


def since_time(ctx: TaskContext) -> datetime | None:
    """Where this run starts: `--from-date`, else an hour before the last run, else everything."""
    if ctx.from_date:
        return datetime.combine(ctx.from_date, time())
    previous = last_run(PROCESS)
    return previous - OVERLAP if previous else None


def changed_handles(since: datetime) -> set[str]:
    """Handles with metadata rows added or deleted since `since` (one query)."""
    query = (
        select(Metadata.idInSource)
        .where(Metadata.source == "dspace", or_(Metadata.added >= since, Metadata.deleted >= since))
        .distinct()
    )
    return set(db.session.scalars(query))


def plan(
    since: datetime | None, now: datetime, orcid: str | None = None, handle: str | None = None
) -> dict[str, list[str]]:
    """ORCID iD → handles to look at in this run, in a stable order (five queries)."""
    linked = (
        select(Orcid.orcid, Metadata.idInSource)
        .join(Orcid, Orcid.orcid == Metadata.value)
        .where(
            Metadata.source == "dspace",
            Metadata.field == "dc.identifier.orcid",
            Metadata.deleted.is_(None),
            Orcid.deleted.is_(None),
        )
    )
    choices = select(UserSelection.orcid, UserSelection.localSourceRecordID, UserSelection.selected).where(
        UserSelection.type == WORK, UserSelection.deleted.is_(None)
    )
    if orcid:
        linked = linked.where(Orcid.orcid == orcid)
        choices = choices.where(UserSelection.orcid == orcid)
    changed = changed_handles(since) if since is not None else None
    with_token = set(live_token_orcids(now))
    on_orcid = {(o, local_id) for o, _, local_id in live_put_code_ids(orcid, (WORK,))}
    chosen = {(o, local_id): bool(selected) for o, local_id, selected in db.session.execute(choices)}

    pairs: set[tuple[str, str]] = set()
    for person, item in db.session.execute(linked):
        local_id = work_local_id(item)
        if changed is None or item in changed:
            pairs.add((person, item))
        elif person in with_token and (person, local_id) not in on_orcid and chosen.get((person, local_id), True):
            pairs.add((person, item))  # never reached ORCID yet (no token then, or a failure): try again
    for (person, local_id), selected in chosen.items():
        item = handle_of(local_id)
        is_on_orcid = (person, local_id) in on_orcid
        if item and (selected != is_on_orcid or (selected and (changed is None or item in changed))):
            pairs.add((person, item))
    for person, local_id in on_orcid:
        item = handle_of(local_id)
        if item and (changed is None or item in changed):
            pairs.add((person, item))

    by_orcid: dict[str, list[str]] = defaultdict(list)
    for person, item in sorted(pairs):
        if not handle or item == handle:
            by_orcid[person].append(item)
    return dict(by_orcid)


def sync_works(ctx: TaskContext, client: OrcidClient | None = None) -> None:
    """The task: push each planned work (POST/PUT/nothing), remove ignored ones, count as §6.2."""
    work = plan(since_time(ctx), ctx.now, ctx.orcid, ctx.handle)
    total = sum(len(handles) for handles in work.values())
    ctx.report.log(f"{total} works of {len(work)} people to look at")
    own_client = client is None
    client = client or make_client(ctx.settings, PROCESS)
    mappings = load_work_mappings()
    done = 0
    try:
        for orcid, handles in work.items():
            token = live_token(ctx.settings, orcid, ctx.now)
            done = _sync_person(ctx, client, mappings, orcid, token, handles, done, total)
    finally:
        if own_client:
            client.close()


def _sync_person(
    ctx: TaskContext,
    client: OrcidClient,
    mappings: WorkMappings,
    orcid: str,
    token: TokenInfo | None,
    handles: list[str],
    done: int,
    total: int,
) -> int:
    report = ctx.report
    choices = live_choices(orcid, WORK)
    writer = OrcidWriter(ctx.settings, client, orcid, token, ctx.now, dry_run=ctx.dry_run) if token else None
    on_orcid = {local_id for _, _, local_id in live_put_code_ids(orcid, (WORK,))}
    for start in range(0, len(handles), READ_CHUNK):
        chunk = handles[start : start + READ_CHUNK]
        items = read_items(chunk)
        for handle in chunk:
            local_id = work_local_id(handle)
            report.count(ALL)
            done += 1
            if writer is None or token is None:
                report.count(NO_TOKEN)
            elif choices.get(local_id) == "ignored":
                report.count(IGNORED)
                if local_id in on_orcid and can_update(token.scope, WORK):
                    _remove(ctx, writer, orcid, handle, local_id)
            elif not can_update(token.scope, WORK):
                report.count(NO_SCOPE)
            elif writer.token_invalid:
                report.count(TOKEN_REFUSED)
            elif handle not in items:
                report.count(NOT_HARVESTED)
            else:
                _push(ctx, writer, mappings, orcid, handle, local_id, items[handle], local_id in on_orcid)
            ctx.commit()
            ctx.progress(done, total)
    return done


def _push(
    ctx: TaskContext,
    writer: OrcidWriter,
    mappings: WorkMappings,
    orcid: str,
    handle: str,
    local_id: str,
    item: dict[str, list[str]],
    was_on_orcid: bool,
) -> None:
    report = ctx.report
    try:
        document = work_document(handle, item, mappings)
    except DocumentError as exc:
        report.count(FAILED_CREATE)
        report.log(f"{orcid} {handle}: not sent, {exc}")
        return
    result = writer.push(WORK, local_id, document)
    if result.status in ("added", "adopted"):
        report.count(NEW)
        _note(ctx, f"add {handle} to {orcid}", f"{orcid} {handle}: added, put-code {result.put_code}")
    elif result.status == "updated":
        report.count(MODIFIED)
        _note(ctx, f"update {handle} on {orcid}", f"{orcid} {handle}: updated, put-code {result.put_code}")
    elif result.status == "unchanged":
        report.count(IDENTICAL)
    elif result.status == "token_invalid":
        report.count(TOKEN_REFUSED)
        report.log(f"{orcid}: {result.message}")
    else:
        report.count(FAILED_UPDATE if was_on_orcid else FAILED_CREATE)
        report.error(f"{orcid} {handle}: {result.message}")


def _remove(ctx: TaskContext, writer: OrcidWriter, orcid: str, handle: str, local_id: str) -> None:
    result = writer.remove(WORK, local_id)
    if result.status == "deleted":
        ctx.report.count(REMOVED)
        _note(ctx, f"delete {handle} from {orcid}", f"{orcid} {handle}: deleted from ORCID (ignored by the researcher)")
    elif result.status == "token_invalid":
        ctx.report.log(f"{orcid}: {result.message}")
    elif result.status == "failed":
        ctx.report.error(f"{orcid} {handle}: ORCID refused the removal: {result.message}")


def _note(ctx: TaskContext, would: str, done: str) -> None:
    if ctx.dry_run:
        ctx.would(would)
    else:
        ctx.report.log(done)
