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

People are shared among worker threads whose clients share one rate limiter. Each item is one
unit of work: pushed through `OrcidWriter` (the researcher page's code path) and
committed, so a run killed mid-way and rerun leaves no duplicate (a POST whose put-code was lost is
answered 409 and adopted). The task lock keeps two runs from overlapping.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, time, timedelta
from queue import Empty, Queue

from flask import current_app
from sqlalchemy import or_, select

from ioi.clients.orcid import OrcidClient, TokenBucket
from ioi.extensions import db
from ioi.models import Metadata, Orcid, UserSelection
from ioi.orcid_documents import DocumentError
from ioi.services import task_state
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
from ioi.services.reports import TaskReport, last_runs
from ioi.services.selections import live_choices
from ioi.services.tokens import can_update, live_token, live_token_orcids
from ioi.taskframe import TaskContext

PROCESS = "syncWorksToORCID"
DESCRIPTION = "Add and update researchers' repository works on their ORCID records."
OVERLAP = timedelta(hours=1)
SINCE = "ioi.sync.since"
READ_CHUNK = 500
WORKERS = 6  # threads overlapping ORCID's latency; the shared rate limiter still caps the calls

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
DUPLICATE = "skipped - same identifiers as another work"


def since_time(ctx: TaskContext, process: str = PROCESS) -> datetime | None:
    """Where this run starts: `--from-date`, else an hour before the last complete run, else everything.

    A complete run is one over everybody (no `--orcid`, `--handle` or `--from-date`) that did not
    crash; it records its start (`record_complete_run`). A run limited to one person, or one that
    crashed, leaves the next run's start where it was. Without a record (a database from the PHP
    IOI) the last run is the newest report, as the original had it.
    """
    if ctx.from_date:
        return datetime.combine(ctx.from_date, time())
    previous = last_complete_runs([process]).get(process)
    return previous - OVERLAP if previous else None


def last_complete_runs(processes: Iterable[str]) -> dict[str, datetime]:
    """When each sync task last started a complete run (see `since_time`); two statements at most."""
    processes = set(processes)
    runs = task_state.read_times(processes, SINCE)
    if processes - set(runs):  # never recorded: a database from the PHP IOI
        runs.update(last_runs(processes - set(runs)))
    return runs


def record_complete_run(ctx: TaskContext, process: str = PROCESS) -> None:
    """The end of a run: if it covered everybody, the next one starts an hour before this one started."""
    if not (ctx.from_date or ctx.orcid or ctx.handle):
        task_state.write_time(process, SINCE, ctx.now, ctx.now)
        ctx.commit()


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


def sync_works(ctx: TaskContext, new_client: Callable[[], OrcidClient] | None = None, workers: int = WORKERS) -> None:
    """The task: push each planned work (POST/PUT/nothing), remove ignored ones, count as §6.2.

    People are shared out among `workers` threads (one person's works stay in one thread, in
    order); the threads' clients share one rate limiter, so ORCID's limit holds while its latency
    is overlapped. `new_client` makes a thread's client (default: from settings).
    """
    if not ctx.settings.ORCID_MEMBER:
        ctx.report.log("ORCID_MEMBER is off: IOI does not write to ORCID records")
        return
    work = plan(since_time(ctx), ctx.now, ctx.orcid, ctx.handle)
    total = sum(len(handles) for handles in work.values())
    ctx.report.log(f"{total} works of {len(work)} people to look at")
    if new_client is None:
        limiter = TokenBucket(ctx.settings.ORCID_MAX_RPS, ctx.settings.ORCID_BURST)
        settings = ctx.settings

        def new_client() -> OrcidClient:
            return make_client(settings, PROCESS, limiter=limiter)

    mappings = load_work_mappings()
    reports = {orcid: TaskReport(PROCESS) for orcid in work}
    progress = _Progress(ctx, total)
    if workers <= 1 or len(work) <= 1:
        with new_client() as client:
            for orcid, handles in work.items():
                _sync_person(replace(ctx, report=reports[orcid]), client, mappings, orcid, handles, progress)
    else:
        _in_threads(ctx, new_client, mappings, work, reports, progress, workers)
    for orcid in work:  # merged in a stable order, whatever thread did the work
        _merge(ctx.report, reports[orcid])
    record_complete_run(ctx)


class _Progress:
    """Items done across threads, shown on a terminal."""

    def __init__(self, ctx: TaskContext, total: int):
        self.ctx, self.total, self.done = ctx, total, 0
        self.lock = threading.Lock()

    def step(self) -> None:
        with self.lock:
            self.done += 1
            self.ctx.progress(self.done, self.total)


def _in_threads(
    ctx: TaskContext,
    new_client: Callable[[], OrcidClient],
    mappings: WorkMappings,
    work: dict[str, list[str]],
    reports: dict[str, TaskReport],
    progress: _Progress,
    workers: int,
) -> None:
    """Run people in worker threads, each with its own app context, session and client."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    queue: Queue[str] = Queue()
    for orcid in sorted(work, key=lambda o: -len(work[o])):  # the longest first
        queue.put(orcid)

    def worker() -> None:
        with app.app_context(), new_client() as client:
            try:
                while True:
                    try:
                        orcid = queue.get_nowait()
                    except Empty:
                        return
                    person_ctx = replace(ctx, report=reports[orcid])
                    try:
                        _sync_person(person_ctx, client, mappings, orcid, work[orcid], progress)
                    except Exception as exc:  # one person's crash must not stop the others
                        db.session.rollback()
                        reports[orcid].error(f"{orcid}: stopped: {type(exc).__name__}: {exc}")
            finally:
                if ctx.dry_run:
                    db.session.rollback()
                db.session.remove()

    threads = [threading.Thread(target=worker, name=f"{PROCESS}-{n}") for n in range(min(workers, len(work)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _merge(into: TaskReport, part: TaskReport) -> None:
    for kind, n in part.counters.items():
        into.count(kind, n)
    into.lines.extend(part.lines)
    into.errors += part.errors


def _sync_person(
    ctx: TaskContext,
    client: OrcidClient,
    mappings: WorkMappings,
    orcid: str,
    handles: list[str],
    progress: _Progress,
) -> None:
    report = ctx.report
    token = live_token(ctx.settings, orcid, ctx.now)
    choices = live_choices(orcid, WORK)
    writer = OrcidWriter(ctx.settings, client, orcid, token, ctx.now, dry_run=ctx.dry_run) if token else None
    if writer is not None:
        writer.preload(WORK)
    on_orcid = {local_id for _, _, local_id in live_put_code_ids(orcid, (WORK,))}
    for start in range(0, len(handles), READ_CHUNK):
        chunk = handles[start : start + READ_CHUNK]
        items = read_items(chunk)
        for handle in chunk:
            local_id = work_local_id(handle)
            report.count(ALL)
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
            progress.step()


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
        ctx.note(f"add {handle} to {orcid}", f"{orcid} {handle}: added, put-code {result.put_code}")
    elif result.status == "updated":
        report.count(MODIFIED)
        ctx.note(f"update {handle} on {orcid}", f"{orcid} {handle}: updated, put-code {result.put_code}")
    elif result.status == "unchanged":
        report.count(IDENTICAL)
    elif result.status == "duplicate":
        report.count(DUPLICATE)
        report.log(f"{orcid} {handle}: {result.message}")
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
        ctx.note(f"delete {handle} from {orcid}", f"{orcid} {handle}: deleted from ORCID (ignored by the researcher)")
    elif result.status == "token_invalid":
        ctx.report.log(f"{orcid}: {result.message}")
    elif result.status == "failed":
        ctx.report.error(f"{orcid} {handle}: ORCID refused the removal: {result.message}")
