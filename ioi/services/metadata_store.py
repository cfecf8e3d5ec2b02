"""The versioned metadata store: whole records in, history kept, a few SQL round trips per batch.

A record is a dict from field (`namespace.element.qualifier`) to its values in place order; a
value is a `Value` (text plus child fields, e.g. an author's `dspace.authority.key`) or plain text.

Writing follows the original IOI rules (`saveValue`), applied to a whole record at once:
- no live row at (source, idInSource, parentRowID, field, place) → insert (`new`);
- a live row with the same value → kept (`unchanged`); its children are compared in turn;
- a live row with another value → a new row is inserted and the old one stamped
  `deleted=now, replacedByRowID=new` (`updated`);
- every other live row of the record (vanished fields and places, children of replaced or
  vanished values) is stamped `deleted=now`. Nothing is ever physically deleted.

`sourceData` holds the raw harvested record, versioned the same way.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Select, and_, case, func, insert, or_, select, text, update

from ioi.extensions import db
from ioi.models import Metadata, SourceData
from ioi.services import data_versions

Status = Literal["new", "updated", "unchanged", "deleted"]


@dataclass
class Value:
    """One value of a field, with optional child fields of its own."""

    value: str
    children: dict[str, list[Value | str]] = field(default_factory=dict)


Record = Mapping[str, list[Value | str]]


@dataclass
class WriteResult:
    """What writing one record changed: a status per top-level field and row counts."""

    fields: dict[str, Status] = field(default_factory=dict)
    inserted: int = 0
    deleted: int = 0
    existed: bool = True

    @property
    def status(self) -> Literal["new", "updated", "unchanged"]:
        if not self.existed:
            return "new"
        return "updated" if self.inserted or self.deleted else "unchanged"


@dataclass
class _Row:
    rowID: int
    parentRowID: int | None
    field: str
    place: int
    value: str


@dataclass(eq=False)
class _Pending:
    """A row to insert; its parent is a live rowID, None (top level) or another pending row."""

    id_in_source: str
    parent: int | _Pending | None
    field: str
    place: int
    value: str
    top_field: str
    replaces: int | None = None
    row_id: int | None = None


def force_index(query: Select, table, index: str) -> Select:
    """`query` reading `table` through `index` on MySQL/MariaDB (other databases choose for themselves).

    For lookups by (source, idInSource IN ...): MariaDB 10.11 otherwise uses `source` alone as the
    index prefix and reads every row of the source.
    """
    for dialect in ("mysql", "mariadb"):
        query = query.with_hint(table, f"FORCE INDEX ({index})", dialect)
    return query


def _as_value(item: Value | str) -> Value:
    return item if isinstance(item, Value) else Value(str(item))


def write_record(source: str, id_in_source: str, record: Record, now: datetime) -> WriteResult:
    """Write one whole record; see `write_records`."""
    return write_records(source, {id_in_source: record}, now)[id_in_source]


def write_records(source: str, records: Mapping[str, Record], now: datetime) -> dict[str, WriteResult]:
    """Write whole records (by idInSource) in the current transaction; the caller commits.

    Round trips for the whole batch: one SELECT; per nesting level with new rows one INSERT and, if
    their ids are needed, one SELECT; at most two UPDATEs.
    """
    live = _live_rows(source, list(records))
    results: dict[str, WriteResult] = {}
    pending: list[_Pending] = []
    kept: set[int] = set()

    for id_in_source, record in records.items():
        rows = live.get(id_in_source, [])
        result = WriteResult(existed=bool(rows))
        by_position = {(r.parentRowID, r.field, r.place): r for r in rows}
        _compare(id_in_source, None, record, by_position, kept, pending, result, top_field=None)
        results[id_in_source] = result

    _insert_pending(source, pending, now)

    replaced = {p.replaces: p.row_id for p in pending if p.replaces is not None}
    vanished: list[int] = []
    for id_in_source, rows in live.items():
        result = results[id_in_source]
        present = {f for f, values in records[id_in_source].items() if values}
        owner = _top_fields(rows)
        for row in rows:
            if row.rowID in kept:
                continue
            result.deleted += 1
            if row.rowID not in replaced:
                vanished.append(row.rowID)
            top = owner[row.rowID]
            result.fields[top] = "updated" if top in present else "deleted"
    _mark_deleted(vanished, replaced, now)
    if pending or vanished:
        data_versions.bump("metadata")
    return results


def _compare(
    id_in_source: str,
    parent: int | _Pending | None,
    fields: Mapping[str, list[Value | str]],
    by_position: dict,
    kept: set[int],
    pending: list[_Pending],
    result: WriteResult,
    top_field: str | None,
) -> None:
    """Match incoming values against live rows under `parent`, queueing inserts."""
    for field_name, values in fields.items():
        owner = top_field or field_name
        for place, item in enumerate(values, start=1):
            node = _as_value(item)
            existing = None if isinstance(parent, _Pending) else by_position.get((parent, field_name, place))
            if existing is not None and existing.value == node.value:
                kept.add(existing.rowID)
                result.fields.setdefault(owner, "unchanged")
                _compare(id_in_source, existing.rowID, node.children, by_position, kept, pending, result, owner)
                continue
            row = _Pending(
                id_in_source, parent, field_name, place, node.value, owner, existing.rowID if existing else None
            )
            pending.append(row)
            result.inserted += 1
            if top_field is None and existing is None:
                result.fields[owner] = "new" if result.fields.get(owner, "new") == "new" else "updated"
            elif not isinstance(parent, _Pending):  # a changed value, or a new child of a kept value
                result.fields[owner] = "updated"
            _compare(id_in_source, row, node.children, by_position, kept, pending, result, owner)


def _insert_pending(source: str, pending: list[_Pending], now: datetime) -> None:
    """Insert level by level so children learn their parent's new rowID.

    Each level is inserted at once (`_insert_rows`). Rows whose id is needed (they have children, or
    replace an old row) are then read back by position: MySQL has no INSERT ... RETURNING. At a position the
    new row is the newest live one (auto-increment ids only grow); the row it replaces is still
    live there until `_mark_deleted`.
    """
    levels: dict[int, list[_Pending]] = defaultdict(list)
    depth: dict[int, int] = {}
    parents: set[int] = set()
    for p in pending:  # parents are always queued before their children
        if isinstance(p.parent, _Pending):
            parents.add(id(p.parent))
            depth[id(p)] = depth[id(p.parent)] + 1
        else:
            depth[id(p)] = 0
        levels[depth[id(p)]].append(p)
    for level in sorted(levels):
        _insert_rows(source, levels[level], now)
        keyed = [p for p in levels[level] if id(p) in parents or p.replaces is not None]
        if keyed:
            ids = _newest_ids(source, keyed)
            for p in keyed:
                p.row_id = ids[(p.id_in_source, _parent_id(p), p.field, p.place)]


JSON_CHUNK = 500_000
# The rows as one JSON parameter, expanded by the server. Its columns are wider than the table's,
# so a value too long for the table fails the INSERT (strict mode) instead of being cut here.
_JSON_TABLE_INSERT = text(
    """INSERT INTO metadata (source, idInSource, parentRowID, field, place, value, added)
    SELECT :source, j.idInSource, j.parentRowID, j.field, j.place, j.value, :added
    FROM JSON_TABLE(:rows, '$[*]' COLUMNS (
        idInSource LONGTEXT PATH '$[0]', parentRowID BIGINT PATH '$[1]', field LONGTEXT PATH '$[2]',
        place BIGINT PATH '$[3]', value LONGTEXT PATH '$[4]')) AS j"""
)


def _insert_rows(source: str, rows: list[_Pending], now: datetime) -> None:
    """Insert rows in as few statements as will do.

    On MariaDB 10.6+ the rows travel as JSON parameters (of up to JSON_CHUNK characters) expanded by
    `JSON_TABLE`: the pure-Python driver would otherwise escape each of the seven values of each row,
    most of a first harvest's CPU time. Elsewhere (SQLite, MySQL, older MariaDB) a batched INSERT.
    """
    if _has_json_table(db.session.get_bind().dialect):
        for chunk in _chunks(rows):
            values = [[p.id_in_source, _parent_id(p), p.field, p.place, p.value] for p in chunk]
            db.session.execute(
                _JSON_TABLE_INSERT, {"source": source, "added": now, "rows": json.dumps(values, ensure_ascii=False)}
            )
        return
    db.session.execute(
        insert(Metadata.__table__),
        [
            {
                "source": source,
                "idInSource": p.id_in_source,
                "parentRowID": _parent_id(p),
                "field": p.field,
                "place": p.place,
                "value": p.value,
                "added": now,
            }
            for p in rows
        ],
    )


def _chunks(rows: list[_Pending]) -> Iterator[list[_Pending]]:
    """Rows in groups of at most JSON_CHUNK characters of text (a group of one if a row is longer), so
    a statement stays well within the server's max_allowed_packet (16 MB by default) even when every
    character needs 4 bytes and escaping."""
    chunk: list[_Pending] = []
    size = 0
    for row in rows:
        length = len(row.value) + len(row.field) + len(row.id_in_source) + 32
        if chunk and size + length > JSON_CHUNK:
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += length
    if chunk:
        yield chunk


def _has_json_table(dialect) -> bool:
    """MariaDB 10.6+ (MySQL 8 has JSON_TABLE too, but IOI is not tested on MySQL: it takes the plain path)."""
    version = getattr(dialect, "server_version_info", None)
    return getattr(dialect, "is_mariadb", False) and bool(version) and version >= (10, 6)


def _parent_id(row: _Pending) -> int | None:
    return row.parent.row_id if isinstance(row.parent, _Pending) else row.parent


def _newest_ids(source: str, rows: list[_Pending]) -> dict[tuple, int]:
    """(idInSource, parentRowID, field, place) → the newest live rowID there, for these rows' positions."""
    table = Metadata.__table__
    parent_ids = {_parent_id(p) for p in rows}
    under = [table.c.parentRowID.in_(parent_ids - {None})] if parent_ids - {None} else []
    if None in parent_ids:
        under.append(table.c.parentRowID.is_(None))
    query = select(table.c.rowID, table.c.idInSource, table.c.parentRowID, table.c.field, table.c.place).where(
        table.c.source == source,
        table.c.idInSource.in_({p.id_in_source for p in rows}),
        table.c.deleted.is_(None),
        or_(*under),
    )
    newest: dict[tuple, int] = {}
    for row_id, *position in db.session.execute(force_index(query, table, "sourceIdInSourceDeleted")):
        key = tuple(position)
        if row_id > newest.get(key, 0):
            newest[key] = row_id
    return newest


def _mark_deleted(vanished: list[int], replaced: dict[int, int], now: datetime) -> None:
    table = Metadata.__table__
    if vanished:
        db.session.execute(update(table).where(table.c.rowID.in_(vanished)).values(deleted=now))
    if replaced:
        db.session.execute(
            update(table)
            .where(table.c.rowID.in_(list(replaced)))
            .values(deleted=now, replacedByRowID=case(replaced, value=table.c.rowID))
        )


def _top_fields(rows: list[_Row]) -> dict[int, str]:
    """rowID → the top-level field its value belongs to."""
    by_id = {r.rowID: r for r in rows}

    def top(row: _Row) -> str:
        while row.parentRowID is not None and row.parentRowID in by_id:
            row = by_id[row.parentRowID]
        return row.field

    return {r.rowID: top(r) for r in rows}


def _live_rows(source: str, ids: list[str]) -> dict[str, list[_Row]]:
    if not ids:
        return {}
    table = Metadata.__table__
    query = select(
        table.c.idInSource, table.c.rowID, table.c.parentRowID, table.c.field, table.c.place, table.c.value
    ).where(table.c.source == source, table.c.idInSource.in_(ids), table.c.deleted.is_(None))
    query = force_index(query, table, "sourceIdInSourceDeleted")
    rows: dict[str, list[_Row]] = defaultdict(list)
    for id_in_source, *values in db.session.execute(query):
        rows[id_in_source].append(_Row(*values))
    return rows


def read_record(source: str, id_in_source: str) -> dict[str, list[Value]]:
    """The live values of one record as nested Values (children included), in one query."""
    return read_records(source, [id_in_source]).get(id_in_source, {})


def read_records(source: str, ids: Iterable[str]) -> dict[str, dict[str, list[Value]]]:
    """Live values of several records, in one query; records with no live rows are absent."""
    records = {}
    for id_in_source, rows in _live_rows(source, list(ids)).items():
        children: dict[int | None, list[_Row]] = defaultdict(list)
        for row in rows:
            children[row.parentRowID].append(row)
        records[id_in_source] = _assemble(None, children)
    return records


def _assemble(parent: int | None, children: dict[int | None, list[_Row]]) -> dict[str, list[Value]]:
    fields: dict[str, list[Value]] = defaultdict(list)
    for row in sorted(children.get(parent, []), key=lambda r: (r.field, r.place)):
        fields[row.field].append(Value(row.value, _assemble(row.rowID, children)))
    return dict(fields)


def flatten(record: Mapping[str, list[Value]]) -> dict[str, list[str]]:
    """Top-level field → list of value texts (children dropped)."""
    return {name: [v.value for v in values] for name, values in record.items()}


def delete_record(source: str, id_in_source: str, now: datetime) -> int:
    """Mark every live metadata and sourceData row of a record deleted; returns metadata rows marked."""
    live = and_(Metadata.source == source, Metadata.idInSource == id_in_source, Metadata.deleted.is_(None))
    count = db.session.execute(update(Metadata).where(live).values(deleted=now)).rowcount
    db.session.execute(
        update(SourceData)
        .where(SourceData.source == source, SourceData.idInSource == id_in_source, SourceData.deleted.is_(None))
        .values(deleted=now)
    )
    if count:
        data_versions.bump("metadata")
    return count


def save_source_data(
    source: str, id_in_source: str, data: str, data_format: str, now: datetime
) -> Literal["new", "modified", "unchanged"]:
    """Keep the raw record: insert it, replace the live version if it differs, or leave it."""
    current = db.session.execute(
        select(SourceData.rowID, SourceData.sourceData).where(
            SourceData.source == source, SourceData.idInSource == id_in_source, SourceData.deleted.is_(None)
        )
    ).first()
    if current is not None and current.sourceData == data:
        return "unchanged"
    table = SourceData.__table__
    new_id = db.session.execute(
        insert(table).values(source=source, idInSource=id_in_source, sourceData=data, format=data_format, added=now)
    ).inserted_primary_key[0]
    if current is None:
        return "new"
    db.session.execute(update(table).where(table.c.rowID == current.rowID).values(deleted=now, replacedByRowID=new_id))
    return "modified"


def read_source_data(source: str, ids: Iterable[str]) -> dict[str, str]:
    """The live raw record of each idInSource that has one, in one query."""
    ids = list(ids)
    if not ids:
        return {}
    query = select(SourceData.idInSource, SourceData.sourceData).where(
        SourceData.source == source, SourceData.idInSource.in_(ids), SourceData.deleted.is_(None)
    )
    query = force_index(query, SourceData, "source")
    return {id_in_source: data for id_in_source, data in db.session.execute(query)}


def save_source_data_many(
    source: str, records: Mapping[str, str], data_format: str, now: datetime
) -> dict[str, Literal["new", "modified", "unchanged"]]:
    """`save_source_data` for many records (by idInSource) in three statements; the caller commits."""
    if not records:
        return {}
    table = SourceData.__table__
    query = select(table.c.idInSource, table.c.rowID, table.c.sourceData).where(
        table.c.source == source, table.c.idInSource.in_(list(records)), table.c.deleted.is_(None)
    )
    query = force_index(query, table, "source")
    current = {id_in_source: (row_id, data) for id_in_source, row_id, data in db.session.execute(query)}
    statuses: dict[str, Literal["new", "modified", "unchanged"]] = {}
    changed = []
    for id_in_source, data in records.items():
        if id_in_source in current and current[id_in_source][1] == data:
            statuses[id_in_source] = "unchanged"
        else:
            statuses[id_in_source] = "modified" if id_in_source in current else "new"
            changed.append(id_in_source)
    if not changed:
        return statuses
    params = [
        {"source": source, "idInSource": i, "sourceData": records[i], "format": data_format, "added": now}
        for i in changed
    ]
    db.session.execute(insert(table), params)
    replacing = [i for i in changed if i in current]
    if replacing:
        # the new version is the newest live row (no INSERT ... RETURNING on MySQL); the old one is still live
        newest = (
            select(table.c.idInSource, func.max(table.c.rowID))
            .where(table.c.source == source, table.c.idInSource.in_(replacing), table.c.deleted.is_(None))
            .group_by(table.c.idInSource)
        )
        new_ids = dict(db.session.execute(force_index(newest, table, "source")).all())
        replaced = {current[i][0]: new_ids[i] for i in replacing}
        db.session.execute(
            update(table)
            .where(table.c.rowID.in_(list(replaced)))
            .values(deleted=now, replacedByRowID=case(replaced, value=table.c.rowID))
        )
    return statuses
