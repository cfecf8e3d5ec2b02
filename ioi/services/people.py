"""Local people and organisations, as kept in the metadata store under source `local`.

A person is the record `person_{localPersonID}` with `local.person.name` ("Surname, Given
Middle"), `local.person.id`, `local.person.email` and one `local.personOrgRelation.id` value per
position (`{personID}_{orgID}_{YYYY-MM-DD start}`) whose children are `local.org.id`,
`local.person.title`, `local.date.start` and `local.date.end`. An organisation is `org_{orgID}`
with `local.org.id`, `local.org.name`, `local.org.type`, `local.org.parent` and its dates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select

from ioi.auth import Identity
from ioi.extensions import db
from ioi.models import Group, Metadata
from ioi.services.metadata_store import Value, read_record, read_records, write_record

SOURCE = "local"
# Organisation types named on their own; any other is shown as "{parent} ({org})".
STANDALONE_ORG_TYPES = {"corelab", "division", "office", "program", "researchcenter", "sector", "university"}


def person_key(person_id: str | int) -> str:
    return f"person_{person_id}"


def org_key(org_id: str | int) -> str:
    return f"org_{org_id}"


def sortable_name(display_name: str) -> str:
    """'Jane A. Smith' → 'Smith, Jane A.'; a name already in sortable form is kept."""
    name = " ".join((display_name or "").split())
    if "," in name or " " not in name:
        return name
    given, surname = name.rsplit(" ", 1)
    return f"{surname}, {given}"


def name_parts(name: str) -> tuple[str, str]:
    """(family names, given names) of a sortable or display name, for ORCID's pre-fill hints."""
    name = " ".join((name or "").split())
    if "," in name:
        surname, given = (part.strip() for part in name.split(",", 1))
        return surname, given
    if " " not in name:
        return name, ""
    given, surname = name.rsplit(" ", 1)
    return surname, given


def affiliation_id(person_id: str | int, relation_id: str) -> str:
    """The localSourceRecordID of a position: `local_person_{personID}_{relation}`."""
    return f"local_person_{person_id}_{relation_id}"


@dataclass
class Org:
    org_id: str
    name: str
    type: str = ""
    parent_id: str | None = None
    parent_name: str | None = None

    @property
    def department_name(self) -> str:
        """How a position's department is shown and sent to ORCID."""
        if self.type.lower() in STANDALONE_ORG_TYPES or not self.parent_name:
            return self.name
        return f"{self.parent_name} ({self.name})"


@dataclass
class Position:
    relation_id: str
    org_id: str | None
    title: str | None
    start_date: str | None
    end_date: str | None
    org: Org | None = None

    def is_current_on(self, day: date) -> bool:
        """Held on that day: no end date, or one not yet passed."""
        return not self.end_date or self.end_date >= day.isoformat()


@dataclass
class LocalPerson:
    person_id: str
    name: str
    email: str | None
    positions: list[Position] = field(default_factory=list)


def _first(values: list[Value] | None) -> str | None:
    return values[0].value if values else None


def read_person(person_id: str | int) -> LocalPerson | None:
    """A person with their positions and organisations (three queries), or None if unknown."""
    record = read_record(SOURCE, person_key(person_id))
    if not record:
        return None
    positions = [
        Position(
            relation_id=relation.value,
            org_id=_first(relation.children.get("local.org.id")),
            title=_first(relation.children.get("local.person.title")),
            start_date=_first(relation.children.get("local.date.start")),
            end_date=_first(relation.children.get("local.date.end")),
        )
        for relation in record.get("local.personOrgRelation.id", [])
    ]
    orgs = read_orgs(p.org_id for p in positions if p.org_id)
    for position in positions:
        position.org = orgs.get(position.org_id or "")
    return LocalPerson(
        person_id=str(person_id),
        name=_first(record.get("local.person.name")) or "",
        email=_first(record.get("local.person.email")),
        positions=positions,
    )


def read_orgs(org_ids: Iterable[str]) -> dict[str, Org]:
    """Organisations by id, with their parent's name (two queries)."""
    records = read_records(SOURCE, [org_key(i) for i in set(org_ids)])
    orgs = {
        key.removeprefix("org_"): Org(
            org_id=key.removeprefix("org_"),
            name=_first(r.get("local.org.name")) or key,
            type=_first(r.get("local.org.type")) or "",
            parent_id=_first(r.get("local.org.parent")),
        )
        for key, r in records.items()
    }
    parents = read_records(SOURCE, [org_key(o.parent_id) for o in orgs.values() if o.parent_id])
    for org in orgs.values():
        parent = parents.get(org_key(org.parent_id)) if org.parent_id else None
        org.parent_name = _first(parent.get("local.org.name")) if parent else None
    return orgs


def find_org_id_by_name(name: str | None) -> str | None:
    """The id of the one organisation currently named `name` (ignoring case and spacing), or None."""
    wanted = " ".join((name or "").split()).casefold()
    if not wanted:
        return None
    rows = db.session.execute(
        select(Metadata.idInSource, Metadata.value).where(
            Metadata.source == SOURCE, Metadata.field == "local.org.name", Metadata.deleted.is_(None)
        )
    ).all()
    keys = {key for key, value in rows if " ".join(value.split()).casefold() == wanted and key.startswith("org_")}
    return keys.pop().removeprefix("org_") if len(keys) == 1 else None


def create_person_from_identity(identity: Identity, now: datetime) -> LocalPerson:
    """On first sign-in, the local record from the directory's attributes (kept if it exists).

    The department becomes a position when it names a known organisation.
    """
    existing = read_person(identity.person_id)
    if existing is not None:
        return existing
    record: dict[str, list[Value | str]] = {
        "local.person.name": [sortable_name(identity.name)],
        "local.person.id": [identity.person_id],
    }
    if identity.email:
        record["local.person.email"] = [identity.email.lower()]
    org_id = find_org_id_by_name(identity.department)
    if org_id:
        start = identity.start_date.isoformat() if identity.start_date else ""
        children: dict[str, list[Value | str]] = {"local.org.id": [org_id]}
        if identity.title:
            children["local.person.title"] = [identity.title]
        if start:
            children["local.date.start"] = [start]
        record["local.personOrgRelation.id"] = [Value(f"{identity.person_id}_{org_id}_{start}", children)]
    write_record(SOURCE, person_key(identity.person_id), record, now)
    return read_person(identity.person_id)  # type: ignore[return-value]


def student_titles() -> set[str]:
    """Job titles of the Students group (lower case)."""
    titles = db.session.execute(select(Group.titles).where(Group.label == "Students")).scalar() or ""
    return {t.strip().lower() for t in titles.split("||") if t.strip()}


def affiliation_type(title: str | None, students: set[str]) -> str:
    """`education` for a Students-group job title, otherwise `employment`."""
    return "education" if title and title.strip().lower() in students else "employment"
