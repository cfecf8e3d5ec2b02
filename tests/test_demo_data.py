from collections import Counter
from datetime import datetime

from ioi.auth import is_admin
from ioi.orcid_ids import is_valid_orcid
from ioi.sandbox.demo_data import demo_people, seed_institution
from ioi.services.people import read_person

NOW = datetime(2026, 11, 1, 8, 0, 0)


def test_demo_people_are_deterministic_and_span_the_groups():
    people = demo_people()
    assert people == demo_people() and len(people) == 50
    assert len({p.person_id for p in people}) == 50 and len({p.email for p in people}) == 50
    titles = Counter(p.title for p in people)
    assert titles["Professor"] and titles["PhD Student"] and titles["Postdoctoral Fellow"]
    orcids = [p.orcid for p in people if p.orcid]
    assert 5 < len(orcids) < 40 and all(is_valid_orcid(o) for o in orcids)


def test_seeded_people_read_back_with_positions_and_an_admin(app):
    people = demo_people()
    seed_institution(people, NOW)
    seed_institution(people, NOW)  # idempotent
    professor = next(p for p in people if p.title == "Professor")
    person = read_person(professor.person_id)
    assert person.name == professor.name and person.email == professor.email
    (position,) = person.positions
    assert position.title == "Professor" and position.org.department_name
    assert is_admin(people[0].email) and not is_admin(professor.email)
