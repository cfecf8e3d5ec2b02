"""Change counters for the data the query API answers from, so its response cache knows when to rebuild.

Every writer of `metadata` (the metadata store) or `orcids` (connecting an iD) calls `bump` in
the transaction of its change; the counter then changes exactly when the data does, and a reader
that sees the change sees the new counter too. A missing row reads as 0. A database not yet
upgraded (the PHP IOI's schema, without `dataVersions`) has no counters: `current` says None
and nothing is cached.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.exc import OperationalError, ProgrammingError

from ioi.extensions import db
from ioi.models import DataVersion

Kind = Literal["metadata", "orcids"]
KINDS: tuple[Kind, ...] = ("metadata", "orcids")
NO_TABLE = (ProgrammingError, OperationalError)  # how MariaDB and SQLite report a missing table


def bump(kind: Kind) -> None:
    """Add one to the counter of `kind` in the current transaction (creating its row if needed)."""
    table = DataVersion.__table__
    if db.session.get_bind().dialect.name == "sqlite":
        statement = sqlite.insert(table).values(name=kind, version=1)
        statement = statement.on_conflict_do_update(index_elements=["name"], set_={"version": table.c.version + 1})
    else:
        statement = mysql.insert(table).values(name=kind, version=1)
        statement = statement.on_duplicate_key_update(version=table.c.version + 1)
    try:
        db.session.execute(statement)
    except NO_TABLE:  # not upgraded yet: there is no cache to keep right
        pass


def current() -> tuple[int, ...] | None:
    """The counters, in `KINDS` order (one small statement); None without the table."""
    try:
        rows = db.session.execute(select(DataVersion.name, DataVersion.version)).all()
    except NO_TABLE:
        return None
    found = {name: version for name, version in rows}
    return tuple(found.get(kind, 0) for kind in KINDS)
