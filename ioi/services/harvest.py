"""Harvest the DSpace repository into the metadata store (task harvestRepository).

OAI-PMH `ListIdentifiers` (metadataPrefix xoai) names the items changed since the resume point;
deleted headers retire the item's rows; every other item is fetched from REST
(`handle/{handle}?expand=metadata`), its raw JSON kept in `sourceData` and its values written
with authority splitting: for ORCID-enabled fields `Name::authorityKey[::orcid]` becomes the value
`Name` with a `dspace.authority.key` child and a `dc.identifier.orcid` grandchild; a language
becomes a `dspace.metadata.language` child; `dspace.date.modified` and `dspace.internal.itemID`
are added.

Speed: an item listed with the datestamp of the version already harvested is not fetched again;
the others are fetched by a small thread pool ahead of the writers and written 50 at a time with
`write_records` (one commit per batch); an item whose raw JSON equals the stored one is not
compared value by value. On MySQL/MariaDB two batches are written at once, each on its own
connection in its own READ COMMITTED transaction, so Python prepares one batch while the server
stores the other (two batches written at once never share an item; READ COMMITTED takes no gap
locks, so the two do not block each other). On SQLite, and in a dry run (one transaction rolled back at the end),
batches are written one after the other on the task's own session.

Where the next run starts (`from`): the original took the newest harvested `dspace.date.modified`
plus one second. OAI lists items by internal id, not by date, so a run that stops half-way would
then skip older unharvested items; and DSpace's OAI index lags REST (nightly `oai import`), so a
REST date can run ahead of OAI. The resume point is therefore kept as the tool's own fact
(`ioi.harvest.from` under source `ioi`, id `harvestRepository`): it only advances when a listing
completes, to the newest OAI datestamp seen plus one second (never past the listing's start, nor
past an item that failed). Without it (a database from the PHP IOI), the newest
`dspace.date.modified` is converted to UTC and used.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from collections.abc import Collection, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from flask import Flask, current_app
from sqlalchemy import func, select

from ioi.clients.dspace import DSpaceClient, DSpaceError, RestItem
from ioi.clients.oai import Header, OaiClient, OaiError, OaiIdDoesNotExist, oai_datetime, parse_oai_datetime
from ioi.config import Settings
from ioi.extensions import db
from ioi.models import Metadata
from ioi.services import task_state
from ioi.services.metadata_store import (
    Value,
    delete_record,
    force_index,
    read_source_data,
    save_source_data_many,
    write_records,
)
from ioi.services.reports import TaskReport
from ioi.taskframe import TaskContext

log = logging.getLogger(__name__)

PROCESS = "harvestRepository"
SOURCE = "dspace"
FORMAT = "JSON"
AUTHORITY_KEY = "dspace.authority.key"
ORCID_FIELD = "dc.identifier.orcid"
LANGUAGE = "dspace.metadata.language"
MODIFIED = "dspace.date.modified"
ITEM_ID = "dspace.internal.itemID"
STATE_FROM = "ioi.harvest.from"
COUNTERS = ("all", "new", "modified", "deleted", "skipped", "unchanged")  # the original's order
BATCH_SIZE = 50
WORKERS = 8
WRITERS = 2
MAX_CONSECUTIVE_FAILURES = 5


class HarvestStopped(Exception):
    """Too many items failed in a row; the run stops and the next one resumes."""


# ------------------------------------------------------------------------------ pure rules


def split_authority(text: str) -> tuple[str, str | None, str | None]:
    """`Name::key::orcid` → (name, key, orcid); parts that are absent or empty are None."""
    name, *rest = text.split("::")
    key = rest[0] or None if rest else None
    orcid = rest[1] or None if len(rest) > 1 else None
    return name, key, orcid


def item_record(item: RestItem, orcid_fields: Collection[str]) -> dict[str, list[Value | str]]:
    """The metadata-store record of a REST item (authority splitting, languages, modified date, id)."""
    record: dict[str, list[Value | str]] = defaultdict(list)
    for entry in item.metadata:
        key = entry["key"]
        text = "" if entry.get("value") is None else str(entry["value"])
        children: dict[str, list[Value | str]] = {}
        if key in orcid_fields and "::" in text:
            text, authority, orcid = split_authority(text)
            if authority:
                children[AUTHORITY_KEY] = [Value(authority, {ORCID_FIELD: [orcid]} if orcid else {})]
        if entry.get("language"):
            children[LANGUAGE] = [str(entry["language"])]
        record[key].append(Value(text, children))
    record[MODIFIED] = [item.last_modified]
    record[ITEM_ID] = [item.item_id]
    return dict(record)


def parse_dspace_timestamp(text: str) -> datetime | None:
    """DSpace's `lastModified` as an aware datetime, or None.

    `2019-06-10 13:30:45.123` (java.sql.Timestamp, the DSpace server's zone, taken to be this host's zone),
    `Fri Aug 27 13:42:16 UTC 2021` (java.util.Date) or ISO 8601 with an offset (DSpace 7).
    """
    text = (text or "").strip()
    try:
        if len(text) >= 19 and text[4] == "-" and text[10] in " T":
            when = datetime.fromisoformat(text.replace(" ", "T", 1).replace("Z", "+00:00"))
            return when if when.tzinfo else when.astimezone()
        parts = text.split()
        if len(parts) == 6:  # EEE MMM dd HH:mm:ss zzz yyyy
            when = parsedate_to_datetime(f"{parts[0]}, {parts[2]} {parts[1]} {parts[5]} {parts[3]} +0000")
            return when if parts[4] in ("UTC", "GMT") else when.replace(tzinfo=None).astimezone()
    except (ValueError, TypeError, IndexError):
        return None
    return None


def next_second(when: datetime) -> str:
    """The OAI `from` just after `when`: one second later, at second granularity, in UTC."""
    return oai_datetime(when.replace(microsecond=0) + timedelta(seconds=1))


# ------------------------------------------------------------------------------ writing items


def write_items(items: Iterable[RestItem], orcid_fields: Collection[str], now: datetime) -> dict[str, str]:
    """Write fetched items (one batch) through the store; handle → `new`, `modified` or `unchanged`.

    An item whose raw JSON equals its live sourceData is `unchanged` without comparing values.
    """
    items = {item.handle: item for item in items}
    stored = read_source_data(SOURCE, items)
    changed = {handle: item for handle, item in items.items() if stored.get(handle) != item.raw}
    statuses = {handle: "unchanged" for handle in items if handle not in changed}
    if changed:
        save_source_data_many(SOURCE, {handle: item.raw for handle, item in changed.items()}, FORMAT, now)
        # last: it ends with the bump of the shared `dataVersions` row, whose lock is then held only until commit
        results = write_records(
            SOURCE, {handle: item_record(item, orcid_fields) for handle, item in changed.items()}, now
        )
        for handle in changed:
            statuses[handle] = "new" if handle not in stored and not results[handle].existed else "modified"
    return statuses


def write_batch(
    retired: Iterable[str], items: Iterable[RestItem], orcid_fields: Collection[str], now: datetime
) -> dict[str, str]:
    """Retire deleted items and write fetched ones (no commit); handle → `deleted`, `new`, `modified` or
    `unchanged` (a deleted item with nothing live)."""
    statuses = {handle: "deleted" if retire_item(handle, now) else "unchanged" for handle in retired}
    statuses.update(write_items(items, orcid_fields, now))
    return statuses


def retire_item(handle: str, now: datetime) -> bool:
    """Mark a deleted/withdrawn item's metadata and sourceData rows deleted; False if nothing was live."""
    live_source = read_source_data(SOURCE, [handle])
    return bool(delete_record(SOURCE, handle, now) or live_source)


def harvest_handles(settings: Settings, client: DSpaceClient, handles: Iterable[str], now: datetime) -> list[str]:
    """Fetch these items from REST and write them (no commit); returns the handles that failed."""
    fetched, failed = [], []
    for handle in handles:
        try:
            fetched.append(client.get_item_by_handle(handle))
        except DSpaceError as exc:
            log.warning("re-harvest of %s failed: %s", handle, exc)
            failed.append(handle)
    write_items(fetched, settings.orcid_enabled_fields, now)
    return failed


def harvested_datestamps(handles: list[str]) -> dict[str, str]:
    """handle → the OAI datestamp (UTC second) of the harvested version, from its `dspace.date.modified`.

    An item listed with this datestamp has not changed since it was harvested and need not be fetched.
    (If the DSpace server's zone differs from this host's, nothing matches and items are fetched.)
    """
    if not handles:
        return {}
    query = select(Metadata.idInSource, Metadata.value).where(
        Metadata.source == SOURCE,
        Metadata.idInSource.in_(handles),
        Metadata.field == MODIFIED,
        Metadata.parentRowID.is_(None),
        Metadata.deleted.is_(None),
    )
    query = force_index(query, Metadata, "checkAll")
    stamps = {}
    for handle, value in db.session.execute(query):
        when = parse_dspace_timestamp(value)
        if when is not None:
            stamps[handle] = oai_datetime(when)
    return stamps


# ------------------------------------------------------------------------------ resume point


def stored_from() -> str | None:
    """The recorded `from` of the next incremental run ("" = list everything), None if never recorded."""
    return task_state.read(PROCESS, STATE_FROM)


def store_from(value: str, now: datetime) -> None:
    task_state.write(PROCESS, STATE_FROM, value, now)


def newest_modified_from() -> str | None:
    """The original's rule, for a database without a resume point: newest `dspace.date.modified` + 1 s, UTC."""
    newest = db.session.execute(
        select(func.max(Metadata.value)).where(
            Metadata.source == SOURCE, Metadata.field == MODIFIED, Metadata.deleted.is_(None)
        )
    ).scalar()
    when = parse_dspace_timestamp(newest or "")
    return next_second(when) if when else None


# ------------------------------------------------------------------------------ the task


class BatchWriters:
    """Writes batches in the order given: `count` at once, each on its own connection, or inline.

    Inline (one after the other on the task's session) on SQLite, which has one writer at a time, and
    in a dry run, whose changes stay in the task's one transaction and are rolled back at the end.
    """

    def __init__(self, ctx: TaskContext, count: int):
        self.ctx = ctx
        self.parallel = count > 1 and not ctx.dry_run and db.engine.dialect.name != "sqlite"
        self.count = count if self.parallel else 1
        self._app: Flask = current_app._get_current_object()
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="harvest-writer") if self.parallel else None

    def __enter__(self) -> BatchWriters:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def submit(self, retired: list[str], items: list[RestItem]) -> Future:
        """Start writing a batch; the future gives `write_batch`'s statuses once it is committed."""
        if self._pool is not None:
            return self._pool.submit(self._write_apart, retired, items)
        return completed(self._write, retired, items)

    def end_reads(self) -> None:
        """End the task session's read transaction, so a long run does not keep an old snapshot open."""
        if self.parallel:
            db.session.commit()

    def _write(self, retired: list[str], items: list[RestItem]) -> dict[str, str]:
        statuses = write_batch(retired, items, self.ctx.settings.orcid_enabled_fields, self.ctx.now)
        self.ctx.commit()
        return statuses

    def _write_apart(self, retired: list[str], items: list[RestItem]) -> dict[str, str]:
        with self._app.app_context():  # a session (and connection) of this thread's own
            db.session.connection(execution_options={"isolation_level": "READ COMMITTED"})
            return self._write(retired, items)


def completed(function, *args) -> Future:
    """A future already holding `function(*args)`'s result or exception (work done on this thread)."""
    future: Future = Future()
    try:
        future.set_result(function(*args))
    except Exception as exc:  # noqa: BLE001 - delivered like a pool result
        future.set_exception(exc)
    return future


@dataclass
class Harvest:
    """One run of the harvest task."""

    ctx: TaskContext
    client: DSpaceClient
    oai: OaiClient
    batch_size: int = BATCH_SIZE
    workers: int = WORKERS
    writers: int = WRITERS
    max_failures: int = MAX_CONSECUTIVE_FAILURES
    failures_in_a_row: int = 0
    done: int = 0
    total: int | None = None
    newest: str | None = None
    failed_datestamps: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _writing: deque[tuple[int, set[str], Future]] = field(default_factory=deque)

    @property
    def report(self) -> TaskReport:
        return self.ctx.report

    def one(self, handle: str) -> None:
        """Harvest a single item (GetRecord for its status, then REST)."""
        prefix = self.ctx.settings.REPOSITORY_OAI_ID_PREFIX or ""
        try:
            header = self.oai.get_record_header(prefix + handle)
        except OaiIdDoesNotExist:
            # Not (yet) in DSpace's OAI index, which lags REST until the next `oai import`: ask REST.
            self.report.log(f"{handle}: not in OAI-PMH; fetched from REST")
            header = Header(prefix + handle, "", deleted=False)
        with BatchWriters(self.ctx, 1) as writers:
            self._process(writers, [(header, None if header.deleted else completed(self._fetch, header))])

    def incremental(self) -> None:
        """List changes since the resume point (or --from-date) and harvest them in batches."""
        explicit = self.ctx.from_date is not None
        recorded = stored_from()
        if explicit:
            start = f"{self.ctx.from_date.isoformat()}T00:00:00Z"
        elif recorded is not None:
            start = recorded or None  # "" records a first, complete listing in progress
        else:
            start = newest_modified_from()
            store_from(start or "", self.ctx.now)  # so a run stopped half-way is resumed from here
            self.ctx.commit()
        self.report.log(f"listing items changed since {start}" if start else "listing every item (first harvest)")
        listing_started: str | None = None
        window: deque[tuple[Header, Future | None]] = deque()
        resume = f"; the next run resumes from {start or 'the start'}"
        with (
            ThreadPoolExecutor(self.workers, thread_name_prefix="harvest") as pool,
            BatchWriters(self.ctx, self.writers) as writers,
        ):
            try:
                for page in self.oai.list_identifiers("xoai", start):
                    listing_started = listing_started or page.response_date
                    self.total = page.complete_list_size or self.total
                    known = harvested_datestamps([h.handle for h in page.headers if not h.deleted])
                    writers.end_reads()
                    for header in page.headers:
                        if header.deleted or known.get(header.handle) == header.datestamp:
                            window.append((header, None))  # retire, or unchanged since harvested: no fetch
                        else:
                            window.append((header, pool.submit(self._fetch, header)))
                    while len(window) >= 2 * self.batch_size:
                        self._process(writers, [window.popleft() for _ in range(self.batch_size)])
                self._process_all(writers, window)
            except HarvestStopped as exc:
                self._stop.set()
                self._finish_writes()
                self.report.error(f"harvest stopped: {exc}{resume}")
                return
            except OaiError as exc:
                self.report.error(f"OAI-PMH listing stopped: {exc}{resume}")
                try:  # keep what was already fetched
                    self._process_all(writers, window)
                except HarvestStopped:
                    self._stop.set()
                    self._finish_writes()
                return
        self._advance(start, recorded, explicit, listing_started)

    def _advance(self, start: str | None, recorded: str | None, explicit: bool, listing_started: str | None) -> None:
        """After a complete listing: move the resume point to just after what was harvested."""
        if self.newest is None and not self.failed_datestamps:
            return
        candidates = [next_second(parse_oai_datetime(self.newest))] if self.newest else []
        candidates += [d for d in (listing_started, *self.failed_datestamps) if d]
        target = min(candidates)
        if start and target < start:
            target = start
        if explicit and recorded is not None and start and start > (recorded or ""):
            return  # a later --from-date must not jump over what the regular runs have not seen
        if target != recorded:
            store_from(target, self.ctx.now)
            self.ctx.commit()
            self.report.log(f"the next run lists items changed since {target}")

    def _fetch(self, header: Header) -> RestItem:
        """Fetch one item in a worker; gives up at once after too many failures in a row."""
        if self._stop.is_set():
            raise HarvestStopped("not fetched")
        try:
            item = self.client.get_item_by_handle(header.handle)
        except DSpaceError:
            with self._lock:
                self.failures_in_a_row += 1
                if self.failures_in_a_row >= self.max_failures:
                    self._stop.set()
            raise
        with self._lock:
            self.failures_in_a_row = 0
        return item

    def _process(self, writers: BatchWriters, batch: list[tuple[Header, Future | None]]) -> None:
        """Take a batch's fetched items and start writing them (and retiring the deleted ones)."""
        fetched: list[RestItem] = []
        retired: list[str] = []
        stopped = False
        for header, future in batch:
            if future is not None:
                try:
                    fetched.append(future.result())
                except HarvestStopped:
                    stopped = True
                    continue
                except DSpaceError as exc:
                    self.report.count("all")
                    self.report.count("skipped")
                    self.report.error(f"{header.handle}: {exc}")
                    self.failed_datestamps.append(header.datestamp)
                    continue
            self.report.count("all")
            self._seen(header)
            if header.deleted:
                retired.append(header.handle)
            elif future is None:
                self.report.count("unchanged")
        handles = {*retired, *(item.handle for item in fetched)}
        while self._writing and any(handles & writing for _, writing, _ in self._writing):
            self._finish_write()  # an item listed twice: its versions are written one after the other
        self._writing.append((len(batch), handles, writers.submit(retired, fetched)))
        while len(self._writing) >= writers.count:
            self._finish_write()
        if stopped or self._stop.is_set():
            raise HarvestStopped(f"{self.max_failures} items in a row could not be fetched from DSpace")

    def _process_all(self, writers: BatchWriters, window: deque[tuple[Header, Future | None]]) -> None:
        """Process what is left in the window and wait until every batch is written."""
        while window:
            self._process(writers, [window.popleft() for _ in range(min(self.batch_size, len(window)))])
        self._finish_writes()

    def _finish_write(self) -> None:
        """Wait for the oldest batch being written and count what it changed."""
        size, _, future = self._writing.popleft()
        for handle, status in future.result().items():
            self.report.count(status)
            if status == "deleted":
                self._would(f"retire {handle} (deleted or withdrawn in DSpace)")
            elif status != "unchanged":
                self._would(f"{'add' if status == 'new' else 'update'} {handle}")
        self.done += size
        self.ctx.progress(self.done, self.total)

    def _finish_writes(self) -> None:
        while self._writing:
            self._finish_write()

    def _seen(self, header: Header) -> None:
        if header.datestamp and (self.newest is None or header.datestamp > self.newest):
            self.newest = header.datestamp

    def _would(self, line: str) -> None:
        if self.ctx.dry_run:
            self.ctx.would(line)


def harvest_repository(
    ctx: TaskContext,
    *,
    client: DSpaceClient | None = None,
    oai: OaiClient | None = None,
    batch_size: int = BATCH_SIZE,
    workers: int = WORKERS,
    writers: int = WRITERS,
) -> None:
    """The harvestRepository task: one item (`ctx.handle`) or every change since the resume point."""
    for counter in COUNTERS:
        ctx.report.count(counter, 0)
    settings = ctx.settings
    if settings.DSPACE_VERSION not in ("5", "6"):
        ctx.report.error(f"harvesting DSpace {settings.DSPACE_VERSION} is not supported yet (DSpace 5 and 6 are)")
        return
    client = client or DSpaceClient.from_settings(settings)
    oai = oai or OaiClient(settings.REPOSITORY_OAI_URL or "")
    try:
        client.login()
        run = Harvest(ctx, client, oai, batch_size=batch_size, workers=workers, writers=writers)
        if ctx.handle:
            try:
                run.one(ctx.handle)
            except (OaiError, HarvestStopped) as exc:
                ctx.report.error(f"{ctx.handle}: {exc}")
        else:
            run.incremental()
    except DSpaceError as exc:
        ctx.report.error(f"DSpace: {exc}")
    finally:
        client.close()
        oai.close()
