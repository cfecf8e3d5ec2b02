from datetime import date, datetime

import pytest

from ioi.auth import Identity
from ioi.extensions import db
from ioi.services.metadata_store import Value, flatten, read_record, write_record
from ioi.services.people import (
    affiliation_id,
    affiliation_type,
    create_person_from_identity,
    find_org_id_by_name,
    name_parts,
    read_person,
    sortable_name,
    student_titles,
)

NOW = datetime(2026, 2, 1, 10, 0, 0)


def org(org_id, name, org_type, parent=None):
    record = {"local.org.id": [org_id], "local.org.name": [name], "local.org.type": [org_type]}
    if parent:
        record["local.org.parent"] = [parent]
    write_record("local", f"org_{org_id}", record, NOW)


@pytest.fixture
def orgs(app):
    org("1", "Example University", "university")
    org("10", "Physical Science and Engineering", "division", parent="1")
    org("20", "Red Sea Research Center", "researchcenter", parent="10")
    org("30", "Marine Science", "program", parent="10")
    org("40", "Coral Lab", "lab", parent="20")
    db.session.commit()


@pytest.mark.parametrize(
    "display,expected",
    [("Jane A. Smith", "Smith, Jane A."), ("Smith, Jane", "Smith, Jane"), ("Cher", "Cher"), ("  Jo   Li ", "Li, Jo")],
)
def test_sortable_name(display, expected):
    assert sortable_name(display) == expected


def test_name_parts_for_orcid_prefill():
    assert name_parts("Smith, Jane A.") == ("Smith", "Jane A.")
    assert name_parts("Jane A. Smith") == ("Smith", "Jane A.")
    assert name_parts("Cher") == ("Cher", "")


def test_first_sign_in_creates_the_person_with_a_position_in_a_known_department(orgs):
    identity = Identity("123456", "Jane.Smith@Example.edu", "Jane A. Smith", "Professor", "Coral Lab", date(2015, 9, 1))
    person = create_person_from_identity(identity, NOW)
    db.session.commit()

    assert (person.person_id, person.name, person.email) == ("123456", "Smith, Jane A.", "jane.smith@example.edu")
    (position,) = person.positions
    assert (position.relation_id, position.org_id, position.title, position.start_date) == (
        "123456_40_2015-09-01",
        "40",
        "Professor",
        "2015-09-01",
    )
    assert position.org.department_name == "Red Sea Research Center (Coral Lab)"
    stored = read_record("local", "person_123456")
    assert flatten(stored)["local.person.id"] == ["123456"]
    assert flatten(stored["local.personOrgRelation.id"][0].children)["local.org.id"] == ["40"]


def test_unknown_department_gives_a_person_without_position(orgs):
    person = create_person_from_identity(Identity("7", "x@example.edu", "Ann Lee", "Engineer", "Nowhere"), NOW)
    assert person.positions == [] and person.name == "Lee, Ann"


def test_an_existing_person_is_kept_as_is(orgs):
    write_record("local", "person_9", {"local.person.name": ["Müller, Zoë"], "local.person.id": ["9"]}, NOW)
    person = create_person_from_identity(Identity("9", "z@example.edu", "Zoe Mueller", "Professor", "Coral Lab"), NOW)
    assert person.name == "Müller, Zoë" and person.positions == []


def test_department_names_follow_the_org_type_rule(orgs):
    write_record(
        "local",
        "person_5",
        {
            "local.person.name": ["Roe, Rick"],
            "local.personOrgRelation.id": [
                Value("5_30_2020-01-01", {"local.org.id": ["30"], "local.person.title": ["Research Scientist"]}),
                Value("5_40_2018-01-01", {"local.org.id": ["40"], "local.date.end": ["2019-12-31"]}),
            ],
        },
        NOW,
    )
    person = read_person("5")
    assert [p.org.department_name for p in person.positions] == [
        "Marine Science",
        "Red Sea Research Center (Coral Lab)",
    ]
    assert [p.is_current_on(date(2026, 1, 1)) for p in person.positions] == [True, False]
    assert read_person("404") is None


def test_org_lookup_by_name_needs_a_unique_live_match(orgs):
    assert find_org_id_by_name("Coral Lab") == "40"
    assert find_org_id_by_name(" coral  LAB ") == "40"
    assert find_org_id_by_name("Coral") is None
    assert find_org_id_by_name(None) is None


def test_affiliation_type_and_id(app):
    students = student_titles()
    assert affiliation_type("PhD Student", students) == "education"
    assert affiliation_type("Professor", students) == "employment"
    assert affiliation_type(None, students) == "employment"
    assert affiliation_id("123456", "123456_40_2015-09-01") == "local_person_123456_123456_40_2015-09-01"
