"""A person's repository works, found in the harvested `dspace` metadata; local people and their ORCID iD.

Works are matched two ways, following the metadata store conventions:
- by ORCID iD: an author value (a top-level row of an ORCID-enabled field) whose `dspace.authority.key`
  child carries a `dc.identifier.orcid` grandchild equal to the iD, or (older harvests) a
  `dc.identifier.orcid` child directly under the author value;
- by name: an author value equal to the person's `Surname, Given` name.

Only live rows count (`deleted IS NULL`). Values are compared by the database, so on MariaDB the
comparison follows the column collation (case-insensitive), on SQLite it is exact.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from sqlalchemy import Select, Text, and_, bindparam, exists, func, literal_column, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ioi.extensions import db
from ioi.models import Metadata, Orcid

DEFAULT_AUTHOR_FIELDS = ("dc.contributor.author", "dc.contributor.advisor", "dc.contributor.committeemember")
MatchKind = Literal["orcid", "name"]
YEAR = re.compile(r"[0-9]{4}")
MAX_INT = 2**31 - 1  # the largest value of an INT column such as orcids.localPersonID


@dataclass(frozen=True)
class Work:
    """One repository item: its handle, its live top-level fields and how it matched the person."""

    handle: str
    fields: dict[str, list[str]]
    matched_by: frozenset[MatchKind] = field(default_factory=frozenset)

    def values(self, name: str) -> list[str]:
        """All live values of a field, in place order."""
        return self.fields.get(name, [])

    def first(self, name: str) -> str:
        """The first value of a field, or ''."""
        values = self.fields.get(name)
        return values[0] if values else ""

    @property
    def title(self) -> str:
        return self.first("dc.title")

    @property
    def type(self) -> str:
        return self.first("dc.type")

    @property
    def authors(self) -> list[str]:
        return self.values("dc.contributor.author")

    @property
    def journal(self) -> str:
        return self.first("dc.identifier.journal")

    @property
    def doi(self) -> str:
        return self.first("dc.identifier.doi")

    @property
    def uri(self) -> str:
        """The handle URL (`dc.identifier.uri`), e.g. http://hdl.handle.net/10754/1."""
        return self.first("dc.identifier.uri")

    @property
    def issued(self) -> str:
        return self.first("dc.date.issued")

    @property
    def year(self) -> str:
        return self.issued[:4] if YEAR.match(self.issued[:4]) else ""

    @property
    def local_source_record_id(self) -> str:
        """The id used for this work in `putCodes` and `userSelections`."""
        return f"repository_{self.handle}"


@dataclass(frozen=True)
class Person:
    """A local person: `name` from `local.person.name` (`Surname, Given`), `orcid` from the live `orcids` row."""

    person_id: str
    name: str | None = None
    orcid: str | None = None
    orcid_name: str | None = None

    @property
    def display_name(self) -> str:
        """The local name, else the name ORCID gave when the iD was recorded, else ''."""
        return self.name or self.orcid_name or ""


def find_works(
    *,
    orcid: str | None = None,
    name: str | None = None,
    year: str | None = None,
    author_fields: Sequence[str] = DEFAULT_AUTHOR_FIELDS,
    fields: Collection[str] | None = None,
) -> list[Work]:
    """Live repository works whose author carries `orcid` and/or equals `name`, newest first.

    `year` (four digits) keeps works whose `dc.date.issued` starts with it; `fields` limits the
    fields read into each work (all by default). One SQL statement whatever the number of works
    (a second one only when MariaDB cuts a work's aggregate at `group_concat_max_len`, 1 MB by
    default). Raises ValueError for a malformed year.
    """
    if year is not None and not YEAR.fullmatch(year):
        raise ValueError(f"not a four-digit year: {year!r}")
    if not orcid and not name:
        return []
    statement = _works_statement(bool(orcid), bool(name), year is not None, fields is not None)
    params = {
        "orcid_forms": [orcid, f"https://orcid.org/{orcid}", f"http://orcid.org/{orcid}"],
        "author_fields": list(author_fields),
        "name": name,
        "year_prefix": f"{year}%",
        "fields": list(fields or ()),
    }
    works = []
    truncated: dict[str, frozenset[MatchKind]] = {}
    for handle, by_orcid, by_name, packed in db.session.connection().execute(statement, params):
        kinds = frozenset((["orcid"] if by_orcid else []) + (["name"] if by_name else []))
        try:
            works.append(Work(handle, _unpack(json.loads(packed)) if packed else {}, kinds))
        except ValueError:  # MariaDB cut the aggregate at group_concat_max_len: read that work row by row
            truncated[handle] = kinds
    if truncated:
        works += _read_row_by_row(truncated, fields)
    works.sort(key=lambda w: w.handle)
    works.sort(key=lambda w: w.issued, reverse=True)
    return works


def _unpack(triples: Iterable[Sequence]) -> dict[str, list[str]]:
    """[field, place, value] triples → field → values in place order."""
    record: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for field_name, place, value in triples:
        record[field_name].append((place, value))
    return {f: [v for _, v in sorted(pv)] for f, pv in record.items()}


def _read_row_by_row(matched: dict[str, frozenset[MatchKind]], fields: Collection[str] | None) -> list[Work]:
    """The works whose aggregate was too long, read as plain rows (one statement)."""
    row = Metadata.__table__
    query = select(row.c.idInSource, row.c.field, row.c.place, row.c.value).where(
        row.c.source == "dspace",
        row.c.idInSource.in_(list(matched)),
        row.c.deleted.is_(None),
        row.c.parentRowID.is_(None),
    )
    if fields is not None:
        query = query.where(row.c.field.in_(list(fields)))
    triples: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
    for handle, field_name, place, value in db.session.connection().execute(query):
        triples[handle].append((field_name, place, value))
    return [Work(handle, _unpack(triples[handle]), kinds) for handle, kinds in matched.items()]


class _json_values(FunctionElement):
    """Aggregate: a JSON array of [field, place, value] arrays (JSON_ARRAYAGG on MariaDB/MySQL,
    json_group_array on SQLite). One row per work instead of one per value: reading rows is most
    of the cost of a request with the pure-Python MySQL driver."""

    type = Text()
    inherit_cache = True
    name = "json_values"


@compiles(_json_values)
def _json_values_sqlite(element, compiler, **kw) -> str:
    return f"json_group_array(json_array({compiler.process(element.clauses, **kw)}))"


@compiles(_json_values, "mysql")
@compiles(_json_values, "mariadb")
def _json_values_mysql(element, compiler, **kw) -> str:
    return f"JSON_ARRAYAGG(JSON_ARRAY({compiler.process(element.clauses, **kw)}))"


@lru_cache(maxsize=16)
def _works_statement(by_orcid: bool, by_name: bool, by_year: bool, some_fields: bool) -> Select:
    """The works query for one combination of criteria, built once; values come as bound parameters.

    Rows: (handle, by_orcid, by_name, JSON array of [field, place, value] or NULL) for every
    matching work. The matching handles form a derived table; each work's live top-level values
    are aggregated by a correlated subquery, which reads them through the (source, idInSource, ...)
    index without sorting the whole result.
    """
    parts = _match_queries(by_orcid, by_name)
    if len(parts) == 1:
        matches = parts[0].subquery("matches")
        hits = select(matches.c.handle, matches.c.by_orcid, matches.c.by_name).distinct()
    else:
        matches = union_all(*parts).subquery("matches")
        hits = select(
            matches.c.handle,
            func.max(matches.c.by_orcid).label("by_orcid"),
            func.max(matches.c.by_name).label("by_name"),
        ).group_by(matches.c.handle)
    if by_year:
        issued = Metadata.__table__.alias("issued")
        hits = hits.where(
            exists().where(
                issued.c.source == "dspace",
                issued.c.idInSource == matches.c.handle,
                issued.c.field == "dc.date.issued",
                issued.c.parentRowID.is_(None),
                issued.c.deleted.is_(None),
                issued.c.value.like(bindparam("year_prefix")),
            )
        )
    hit = hits.subquery("hit")
    row = Metadata.__table__.alias("row")
    values = select(_json_values(row.c.field, row.c.place, row.c.value)).where(
        row.c.source == "dspace",
        row.c.idInSource == hit.c.handle,
        row.c.parentRowID.is_(None),
        row.c.deleted.is_(None),
    )
    if some_fields:
        values = values.where(row.c.field.in_(bindparam("fields", expanding=True)))
    return select(hit.c.handle, hit.c.by_orcid, hit.c.by_name, values.scalar_subquery())


def _match_queries(by_orcid: bool, by_name: bool) -> list[Select]:
    """SELECTs of (handle, by_orcid, by_name) for each way a work can match."""
    table = Metadata.__table__
    one, zero = literal_column("1"), literal_column("0")
    author_fields = bindparam("author_fields", expanding=True)
    parts = []
    if by_orcid:
        # The iD hangs under the author's authority key, or (older harvests) under the author value itself.
        iid, key, author = table.alias("iid"), table.alias("akey"), table.alias("author")
        joined = iid.outerjoin(
            key,
            and_(key.c.rowID == iid.c.parentRowID, key.c.field == "dspace.authority.key", key.c.deleted.is_(None)),
        ).join(author, author.c.rowID == func.coalesce(key.c.parentRowID, iid.c.parentRowID))
        parts.append(
            select(author.c.idInSource.label("handle"), one.label("by_orcid"), zero.label("by_name"))
            .select_from(joined)
            .where(
                iid.c.source == "dspace",
                iid.c.field == "dc.identifier.orcid",
                iid.c.value.in_(bindparam("orcid_forms", expanding=True)),
                iid.c.deleted.is_(None),
                author.c.field.in_(author_fields),
                author.c.parentRowID.is_(None),
                author.c.deleted.is_(None),
            )
        )
    if by_name:
        author = table.alias("named")
        parts.append(
            select(author.c.idInSource.label("handle"), zero.label("by_orcid"), one.label("by_name")).where(
                author.c.source == "dspace",
                author.c.field.in_(author_fields),
                author.c.value == bindparam("name"),
                author.c.parentRowID.is_(None),
                author.c.deleted.is_(None),
            )
        )
    return parts


def _person_statement() -> Select:
    """One round trip for a person: their local name and id rows, then their live `orcids` rows.

    Rows are (field, value, rank): local fields ranked by place, the orcids rows as `orcids.orcid`
    and `orcids.name` ranked by rowID, so the newest live one can be picked.
    """
    meta, orcids = Metadata.__table__, Orcid.__table__
    local = select(meta.c.field, meta.c.value, meta.c.place.label("rank")).where(
        meta.c.source == "local",
        meta.c.idInSource == bindparam("id_in_source"),
        meta.c.field.in_(["local.person.id", "local.person.name"]),
        meta.c.parentRowID.is_(None),
        meta.c.deleted.is_(None),
    )
    live = [orcids.c.localPersonID == bindparam("person_id"), orcids.c.deleted.is_(None)]
    iid = select(literal_column("'orcids.orcid'"), orcids.c.orcid, orcids.c.rowID).where(*live)
    name = select(literal_column("'orcids.name'"), orcids.c.name, orcids.c.rowID).where(*live)
    return union_all(local, iid, name)


_PERSON = _person_statement()


def find_person(person_id: str) -> Person | None:
    """The local person `person_{id}` with their live ORCID iD; None when neither is known. One statement."""
    numeric = person_id.isascii() and person_id.isdigit() and int(person_id) <= MAX_INT  # localPersonID is an INT
    params = {"id_in_source": f"person_{person_id}", "person_id": int(person_id) if numeric else -1}
    found: dict[str, tuple[int, str]] = {}
    for field_name, value, rank in db.session.connection().execute(_PERSON, params):
        best = found.get(field_name)
        newest_wins = field_name.startswith("orcids.")  # else the first place wins
        if best is None or (rank > best[0] if newest_wins else rank < best[0]):
            found[field_name] = (rank, value)
    if not found:
        return None
    values = {name: value for name, (_, value) in found.items()}
    return Person(
        person_id=person_id,
        name=values.get("local.person.name"),
        orcid=values.get("orcids.orcid"),
        orcid_name=values.get("orcids.name"),
    )


def find_person_works(
    person: Person,
    year: str | None = None,
    author_fields: Sequence[str] = DEFAULT_AUTHOR_FIELDS,
    fields: Collection[str] | None = None,
) -> list[Work]:
    """The query API's rule: works by the person's ORCID iD when known, else by their local name."""
    if person.orcid:
        return find_works(orcid=person.orcid, year=year, author_fields=author_fields, fields=fields)
    return find_works(name=person.name, year=year, author_fields=author_fields, fields=fields)


def iter_people_with_orcid(chunk_size: int = 1000) -> Iterator[Person]:
    """Every live `orcids` row as a Person (by localPersonID), read in chunks: memory stays flat.

    Two statements per chunk: the orcids rows (keyset pagination on rowID) and their local names.
    """
    table = Metadata.__table__
    last = 0
    while True:
        chunk = db.session.execute(
            select(Orcid.rowID, Orcid.localPersonID, Orcid.orcid, Orcid.name)
            .where(Orcid.deleted.is_(None), Orcid.rowID > last)
            .order_by(Orcid.rowID)
            .limit(chunk_size)
        ).all()
        if not chunk:
            return
        last = chunk[-1].rowID
        names: dict[str, str] = {}
        for id_in_source, value in db.session.execute(
            select(table.c.idInSource, table.c.value)
            .where(
                table.c.source == "local",
                table.c.idInSource.in_({f"person_{r.localPersonID}" for r in chunk}),
                table.c.field == "local.person.name",
                table.c.parentRowID.is_(None),
                table.c.deleted.is_(None),
            )
            .order_by(table.c.place.desc())
        ):
            names[id_in_source] = value  # place 1 last: it wins
        for r in chunk:
            yield Person(str(r.localPersonID), names.get(f"person_{r.localPersonID}"), r.orcid, r.name)
