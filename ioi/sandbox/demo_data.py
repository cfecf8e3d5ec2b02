"""A made-up institution for the demo: organisations, people with positions, and an admin.

Deterministic for a given seed, written through the same metadata store conventions as the HR
uploads (source `local`), so every page and task sees it as real data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime

from ioi.extensions import db
from ioi.models import User
from ioi.orcid_ids import make_orcid
from ioi.services.metadata_store import Value, write_records

# (org id, name, type, parent id)
ORGS = [
    ("1", "Demo University", "university", None),
    ("10", "Physical Science and Engineering", "division", "1"),
    ("11", "Biological and Environmental Science", "division", "1"),
    ("12", "Computer and Mathematical Science", "division", "1"),
    ("20", "Marine Science", "program", "11"),
    ("21", "Bioscience", "program", "11"),
    ("22", "Chemical Engineering", "program", "10"),
    ("23", "Computer Science", "program", "12"),
    ("24", "Applied Mathematics", "program", "12"),
    ("30", "Red Sea Research Center", "researchcenter", "11"),
    ("31", "Visual Computing Center", "researchcenter", "12"),
    ("40", "Coral Reef Ecology Lab", "lab", "30"),
    ("41", "Membranes Lab", "lab", "22"),
    ("42", "Geometry Processing Lab", "lab", "31"),
    ("50", "University Library", "office", "1"),
]
RESEARCH_UNITS = ["20", "21", "22", "23", "24", "30", "31", "40", "41", "42"]
TITLES = [
    ("Professor", 8),
    ("Associate Professor", 5),
    ("Assistant Professor", 5),
    ("Postdoctoral Fellow", 8),
    ("PhD Student", 10),
    ("MS Student", 6),
    ("Research Scientist", 5),
    ("Engineer", 2),
]
GIVEN = [
    "Amina", "Ben", "Chen", "Dalia", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Karima", "Luis",
    "Maya", "Nikolai", "Omar", "Priya", "Quentin", "Rania", "Sven", "Tariq", "Uma", "Victor", "Wen", "Ximena",
    "Yusuf", "Zara", "Adel", "Bianca", "Carlos", "Dina",
]  # fmt: skip
FAMILY = [
    "Al-Harbi", "Becker", "Castillo", "Dubois", "Eriksen", "Fujita", "García", "Haddad", "Ivanova", "Jensen",
    "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Qureshi", "Rossi", "Schmidt", "Tanaka",
    "Ueda", "Varga", "Wójcik", "Xu", "Yilmaz", "Zhang", "O'Brien", "Núñez", "Søndergaard", "Abdullah",
]  # fmt: skip

ADMIN_ID = "100001"


@dataclass
class DemoPerson:
    person_id: str
    given: str
    family: str
    email: str
    title: str
    org_id: str
    start: date
    orcid: str | None  # an existing ORCID iD the person already has (at the ORCID sandbox)

    @property
    def name(self) -> str:
        """Surname-first, as the repository and the local records write it."""
        return f"{self.family}, {self.given}"

    @property
    def display_name(self) -> str:
        return f"{self.given} {self.family}"


def demo_people(seed: int = 7) -> list[DemoPerson]:
    """About fifty people across the groups; the first is the library's repository manager (admin)."""
    rng = random.Random(seed)
    names = rng.sample([(g, f) for g in GIVEN for f in FAMILY], 51)
    people = [
        DemoPerson(ADMIN_ID, "Rita", "Librarian", "rita.librarian@demo.example.edu", "Repository Manager", "50",
                   date(2012, 3, 1), None)
    ]  # fmt: skip
    titles = [title for title, count in TITLES for _ in range(count)]
    for number, (title, (given, family)) in enumerate(zip(titles, names, strict=False), start=1):
        person_id = str(100001 + number)
        local = f"{given}.{family}".lower().replace("'", "").replace(" ", "")
        has_orcid = rng.random() < 0.4
        people.append(
            DemoPerson(
                person_id=person_id,
                given=given,
                family=family,
                email=f"{local}@demo.example.edu",
                title=title,
                org_id=rng.choice(RESEARCH_UNITS),
                start=date(rng.randint(2008, 2024), rng.randint(1, 12), 1),
                orcid=make_orcid(2_0000_0000 + int(person_id)) if has_orcid else None,
            )
        )
    return people


def seed_institution(people: list[DemoPerson], now: datetime) -> None:
    """Write the organisations and people to the store and make the first person an admin."""
    orgs = {}
    for org_id, name, org_type, parent in ORGS:
        record: dict[str, list[Value | str]] = {
            "local.org.id": [org_id],
            "local.org.name": [name],
            "local.org.type": [org_type],
        }
        if parent:
            record["local.org.parent"] = [parent]
        orgs[f"org_{org_id}"] = record
    write_records("local", orgs, now)

    records = {}
    for person in people:
        relation = Value(
            f"{person.person_id}_{person.org_id}_{person.start.isoformat()}",
            {
                "local.org.id": [person.org_id],
                "local.person.title": [person.title],
                "local.date.start": [person.start.isoformat()],
            },
        )
        records[f"person_{person.person_id}"] = {
            "local.person.name": [person.name],
            "local.person.id": [person.person_id],
            "local.person.email": [person.email],
            "local.personOrgRelation.id": [relation],
        }
    write_records("local", records, now)
    if db.session.get(User, people[0].email) is None:
        db.session.add(User(email=people[0].email, admin=1, added=now))
    db.session.commit()
