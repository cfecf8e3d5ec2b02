"""The ORCID client as IOI uses it: built from settings, every call kept in `orcidCalls`.

Audit rows and transactions: a call's row must survive a rollback of the work around it, and on
SQLite a second connection cannot write while the request's or task's transaction holds the write
lock. So the on_call hook only queues the row (process, method, URL, status, ms; never a token:
URLs carry only the iD and put-code), and the queue is written in its own short transaction on a
separate connection as soon as any session transaction ends (commit, rollback or close), or when
`flush_call_log()` is called (the client's `close()` does too). A crash loses at most the rows of
the unit of work in progress.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import datetime

from sqlalchemy import event, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ioi.clients.orcid import OrcidClient
from ioi.config import Settings
from ioi.extensions import db
from ioi.models import OrcidCall
from ioi.timeutil import now as local_now

log = logging.getLogger(__name__)

_queue: deque[tuple[Engine, dict]] = deque()
_flush_lock = threading.Lock()


class AuditedOrcidClient(OrcidClient):
    """An OrcidClient whose close() also writes the queued audit rows."""

    def close(self) -> None:
        super().close()
        flush_call_log()


def make_client(settings: Settings, process: str, **options) -> AuditedOrcidClient:
    """An ORCID client from settings (endpoints, client id/secret, ORCID_MAX_RPS, ORCID_BURST) whose
    calls are recorded in `orcidCalls` under `process`. Needs an app context (for the engine);
    `options` go to OrcidClient (timeouts, retries, limiter...)."""
    engine = db.engine
    process = process[:50]

    def record(method: str, url: str, status: int | None, elapsed_ms: int) -> None:
        row = {"process": process, "method": method[:10], "url": url[:500], "status": status, "ms": elapsed_ms}
        row["timestamp"] = local_now()
        _queue.append((engine, row))

    options.setdefault("rate", settings.ORCID_MAX_RPS)
    options.setdefault("burst", settings.ORCID_BURST)
    return AuditedOrcidClient(
        settings.ORCID_API_URL or "",
        settings.OAUTH_TOKEN_URL or "",
        settings.OAUTH_REVOKE_URL or "",
        settings.OAUTH_CLIENT_ID,
        settings.OAUTH_CLIENT_SECRET,
        on_call=record,
        **options,
    )


def flush_call_log() -> int:
    """Write the queued audit rows, each engine's in one short transaction; returns rows written.
    Never raises: an audit failure is logged and must not break the work. On SQLite, while this
    thread's session holds the write lock the rows wait for its transaction to end instead."""
    if _queue and _sqlite_write_pending():
        return 0
    with _flush_lock:
        batches: dict[Engine, list[dict]] = {}
        while _queue:
            engine, row = _queue.popleft()
            batches.setdefault(engine, []).append(row)
        written = 0
        for engine, rows in batches.items():
            try:
                with engine.begin() as conn:
                    conn.execute(insert(OrcidCall.__table__), rows)
                written += len(rows)
            except Exception:
                log.exception("could not record %d ORCID call(s) in orcidCalls", len(rows))
        return written


def _sqlite_write_pending() -> bool:
    """True when this thread's session has an SQLite write transaction open (a second connection
    would wait for its lock)."""
    try:
        session = db.session()
        if session.get_bind().dialect.name != "sqlite" or not session.in_transaction():
            return False
        return bool(session.connection().connection.dbapi_connection.in_transaction)
    except Exception:  # no app context, no session: nothing of ours holds the lock
        return False


def pending_call_rows() -> int:
    """How many audit rows wait to be written (for tests)."""
    return len(_queue)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction) -> None:
    if transaction.parent is None and _queue:
        flush_call_log()


def call_rows_since(since: datetime, process: str | None = None) -> list[OrcidCall]:
    """Audit rows recorded at or after `since` (optionally for one process), oldest first."""
    query = select(OrcidCall).where(OrcidCall.timestamp >= since).order_by(OrcidCall.callID)
    if process:
        query = query.where(OrcidCall.process == process)
    return list(db.session.scalars(query))
