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

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import and_, exists, func, literal_column, select, union_all

from ioi.extensions import db
from ioi.models import Metadata, Orcid

DEFAULT_AUTHOR_FIELDS = ("dc.contributor.author", "dc.contributor.advisor", "dc.contributor.committeemember")
MatchKind = Literal["orcid", "name"]
YEAR = re.compile(r"[0-9]{4}")


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
) -> list[Work]:
    """Live repository works whose author carries `orcid` and/or equals `name`, newest first.

    `year` (four digits) keeps works whose `dc.date.issued` starts with it. One SQL statement,
    whatever the number of works. Raises ValueError for a malformed year.
    """
    if year is not None and not YEAR.fullmatch(year):
        raise ValueError(f"not a four-digit year: {year!r}")
    parts = _match_queries(orcid, name, list(author_fields))
    if not parts:
        return []
    matches = union_all(*parts).subquery("matches")
    hits = select(
        matches.c.handle,
        func.max(matches.c.by_orcid).label("by_orcid"),
        func.max(matches.c.by_name).label("by_name"),
    ).group_by(matches.c.handle)
    if year is not None:
        issued = Metadata.__table__.alias("issued")
        hits = hits.where(
            exists().where(
                issued.c.source == "dspace",
                issued.c.idInSource == matches.c.handle,
                issued.c.field == "dc.date.issued",
                issued.c.parentRowID.is_(None),
                issued.c.deleted.is_(None),
                issued.c.value.like(f"{year}%"),
            )
        )
    hit = hits.subquery("hit")
    row = Metadata.__table__.alias("row")
    query = select(hit.c.handle, hit.c.by_orcid, hit.c.by_name, row.c.field, row.c.place, row.c.value).join_from(
        hit,
        row,
        and_(
            row.c.source == "dspace",
            row.c.idInSource == hit.c.handle,
            row.c.deleted.is_(None),
            row.c.parentRowID.is_(None),
        ),
    )
    values: dict[str, dict[str, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    matched: dict[str, frozenset[MatchKind]] = {}
    for handle, by_orcid, by_name, field_name, place, value in db.session.execute(query):
        values[handle][field_name].append((place, value))
        if handle not in matched:
            kinds: list[MatchKind] = (["orcid"] if by_orcid else []) + (["name"] if by_name else [])
            matched[handle] = frozenset(kinds)
    works = [
        Work(handle, {f: [v for _, v in sorted(pv)] for f, pv in fields.items()}, matched[handle])
        for handle, fields in values.items()
    ]
    works.sort(key=lambda w: w.handle)
    works.sort(key=lambda w: w.issued, reverse=True)
    return works


def _match_queries(orcid: str | None, name: str | None, author_fields: list[str]) -> list:
    """SELECTs of (handle, by_orcid, by_name) for each way a work can match."""
    table = Metadata.__table__
    one, zero = literal_column("1"), literal_column("0")
    parts = []
    if orcid:
        forms = [orcid, f"https://orcid.org/{orcid}", f"http://orcid.org/{orcid}"]
        for via_key in (True, False):
            iid, author = table.alias("iid"), table.alias("author")
            conditions = [
                iid.c.source == "dspace",
                iid.c.field == "dc.identifier.orcid",
                iid.c.value.in_(forms),
                iid.c.deleted.is_(None),
                author.c.field.in_(author_fields),
                author.c.parentRowID.is_(None),
                author.c.deleted.is_(None),
            ]
            if via_key:
                key = table.alias("akey")
                joined = iid.join(key, key.c.rowID == iid.c.parentRowID).join(
                    author, author.c.rowID == key.c.parentRowID
                )
                conditions += [key.c.field == "dspace.authority.key", key.c.deleted.is_(None)]
            else:
                joined = iid.join(author, author.c.rowID == iid.c.parentRowID)
            parts.append(
                select(author.c.idInSource.label("handle"), one.label("by_orcid"), zero.label("by_name"))
                .select_from(joined)
                .where(*conditions)
            )
    if name:
        author = table.alias("named")
        parts.append(
            select(author.c.idInSource.label("handle"), zero.label("by_orcid"), one.label("by_name")).where(
                author.c.source == "dspace",
                author.c.field.in_(author_fields),
                author.c.value == name,
                author.c.parentRowID.is_(None),
                author.c.deleted.is_(None),
            )
        )
    return parts


def find_person(person_id: str) -> Person | None:
    """The local person `person_{id}` with their live ORCID iD; None when neither is known. Two statements."""
    table = Metadata.__table__
    rows = db.session.execute(
        select(table.c.field, table.c.value)
        .where(
            table.c.source == "local",
            table.c.idInSource == f"person_{person_id}",
            table.c.field.in_(["local.person.id", "local.person.name"]),
            table.c.parentRowID.is_(None),
            table.c.deleted.is_(None),
        )
        .order_by(table.c.place)
    ).all()
    local = {}
    for field_name, value in rows:
        local.setdefault(field_name, value)
    orcid_row = None
    if person_id.isascii() and person_id.isdigit():
        orcid_row = db.session.execute(
            select(Orcid.orcid, Orcid.name)
            .where(Orcid.localPersonID == int(person_id), Orcid.deleted.is_(None))
            .order_by(Orcid.rowID.desc())
            .limit(1)
        ).first()
    if not local and orcid_row is None:
        return None
    return Person(
        person_id=person_id,
        name=local.get("local.person.name"),
        orcid=orcid_row.orcid if orcid_row else None,
        orcid_name=orcid_row.name if orcid_row else None,
    )


def find_person_works(
    person: Person, year: str | None = None, author_fields: Sequence[str] = DEFAULT_AUTHOR_FIELDS
) -> list[Work]:
    """The query API's rule: works by the person's ORCID iD when known, else by their local name."""
    if person.orcid:
        return find_works(orcid=person.orcid, year=year, author_fields=author_fields)
    return find_works(name=person.name, year=year, author_fields=author_fields)


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
