"""The works service: a person's repository works by ORCID iD and/or name, and local people with their iD.

The helpers here also seed data for the query API tests (test_query*.py).
"""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from conftest import SERVER_URL

from ioi.extensions import db
from ioi.models import Orcid
from ioi.services.metadata_store import Value, write_record, write_records
from ioi.services.works import find_person, find_person_works, find_works, iter_people_with_orcid

T0 = datetime(2026, 1, 5, 9, 0, 0)
T1 = datetime(2026, 2, 5, 9, 0, 0)
JANE = "0000-0002-1825-0097"
JOHN = "0000-0002-9079-593X"


def author(name: str, key: str | None = None, orcid: str | None = None) -> Value:
    """An author value as the harvest stores it: authority key child, ORCID iD grandchild."""
    if key is None:
        return Value(name)
    grandchildren = {"dc.identifier.orcid": [orcid]} if orcid else {}
    return Value(name, {"dspace.authority.key": [Value(key, grandchildren)]})


def item(handle: str, title: str, authors: list, issued: str = "2019-03-05", **extra) -> dict:
    record = {
        "dc.title": [title],
        "dc.contributor.author": authors,
        "dc.date.issued": [issued],
        "dc.type": ["Article"],
        "dc.identifier.journal": ["Journal of Reefs"],
        "dc.identifier.doi": [f"10.1000/{handle.replace('/', '.')}"],
        "dc.identifier.uri": [f"http://hdl.handle.net/{handle}"],
    }
    record.update(extra)
    return record


def add_person(person_id: int, name: str, orcid: str | None = None, orcid_name: str | None = None) -> None:
    """A local person record and, with an iD, their live `orcids` row; committed."""
    write_record("local", f"person_{person_id}", {"local.person.id": [str(person_id)], "local.person.name": [name]}, T0)
    if orcid:
        db.session.add(
            Orcid(email=f"p{person_id}@example.edu", orcid=orcid, name=orcid_name or name, localPersonID=person_id)
        )
    db.session.commit()


def add_works(count: int, orcid: str = JANE, name: str = "Smith, Jane", start: int = 0, year: int = 2019) -> list[str]:
    """`count` works by one author carrying `orcid`; returns their handles; committed."""
    records = {
        f"10754/{n}": item(
            f"10754/{n}",
            f"Work {n}",
            [author(name, f"key-{orcid}", orcid), author("Doe, John", "key-2")],
            issued=f"{year - n % 3}-0{n % 9 + 1}-15",
        )
        for n in range(start, start + count)
    }
    write_records("dspace", records, T0)
    db.session.commit()
    return list(records)


def test_finds_works_by_orcid_through_the_authority_key(app):
    add_works(3)
    add_works(2, orcid=JOHN, name="Roe, Rick", start=10)
    works = find_works(orcid=JANE)
    assert sorted(w.handle for w in works) == ["10754/0", "10754/1", "10754/2"]
    assert all(w.matched_by == {"orcid"} for w in works)


def test_finds_an_orcid_directly_under_the_author_value(app):
    write_record(
        "dspace", "10754/7", item("10754/7", "Direct", [Value("Smith, J.", {"dc.identifier.orcid": [JANE]})]), T0
    )
    assert [w.handle for w in find_works(orcid=JANE)] == ["10754/7"]


def test_accepts_an_orcid_stored_as_a_url(app):
    record = item("10754/8", "URL form", [author("Smith, J.", "k", f"https://orcid.org/{JANE}")])
    write_record("dspace", "10754/8", record, T0)
    assert [w.handle for w in find_works(orcid=JANE)] == ["10754/8"]


def test_finds_works_by_name_and_reports_both_matches(app):
    write_records(
        "dspace",
        {
            "10754/1": item("10754/1", "Both", [author("Smith, Jane", "k", JANE)]),
            "10754/2": item("10754/2", "Name only", [author("Smith, Jane")]),
            "10754/3": item("10754/3", "Other", [author("Smith, Janet")]),
            "10754/4": item("10754/4", "Advisor", [author("Roe, R")], **{"dc.contributor.advisor": ["Smith, Jane"]}),
        },
        T0,
    )
    by_name = {w.handle: w.matched_by for w in find_works(name="Smith, Jane")}
    assert by_name == {"10754/1": {"name"}, "10754/2": {"name"}, "10754/4": {"name"}}
    both = {w.handle: w.matched_by for w in find_works(orcid=JANE, name="Smith, Jane")}
    assert both["10754/1"] == {"orcid", "name"} and both["10754/2"] == {"name"}
    only_authors = find_works(name="Smith, Jane", author_fields=["dc.contributor.author"])
    assert {w.handle for w in only_authors} == {"10754/1", "10754/2"}


def test_work_exposes_the_live_fields(app):
    write_record(
        "dspace",
        "10754/5",
        item(
            "10754/5", "Corals", [author("Smith, Jane", "k", JANE), author("Doe, John")], **{"dc.subject": ["a", "b"]}
        ),
        T0,
    )
    (work,) = find_works(orcid=JANE)
    assert (work.handle, work.title, work.type, work.journal, work.issued, work.year) == (
        "10754/5",
        "Corals",
        "Article",
        "Journal of Reefs",
        "2019-03-05",
        "2019",
    )
    assert work.authors == ["Smith, Jane", "Doe, John"]
    assert (work.doi, work.uri) == ("10.1000/10754.5", "http://hdl.handle.net/10754/5")
    assert work.fields["dc.subject"] == ["a", "b"]
    assert "dspace.authority.key" not in work.fields  # children stay out of the field dict
    assert work.local_source_record_id == "repository_10754/5"


def test_only_live_rows_count(app):
    write_record("dspace", "10754/1", item("10754/1", "Old title", [author("Smith, J. A.", "k", JANE)]), T0)
    write_record("dspace", "10754/1", item("10754/1", "New title", [author("Smith, J. A.", "k")]), T1)  # iD removed
    write_record("dspace", "10754/2", item("10754/2", "Old title", [author("Smith, J.")]), T0)
    write_record("dspace", "10754/2", item("10754/2", "Renamed", [author("Smith, Jane")]), T1)
    assert find_works(orcid=JANE) == []
    assert find_works(name="Smith, J.") == []
    (work,) = find_works(name="Smith, Jane")
    assert (work.handle, work.title) == ("10754/2", "Renamed")


def test_year_filter_and_newest_first(app):
    add_works(6)  # issued in 2019, 2018, 2017, 2019, ...
    works = find_works(orcid=JANE)
    assert [w.issued for w in works] == sorted((w.issued for w in works), reverse=True)
    assert {w.handle for w in find_works(orcid=JANE, year="2018")} == {"10754/1", "10754/4"}
    assert find_works(orcid=JANE, year="1999") == []
    with pytest.raises(ValueError):
        find_works(orcid=JANE, year="19")


def test_nothing_to_match_returns_no_works_without_querying(app, statements):
    with statements() as count:
        assert find_works() == [] and find_works(orcid="", name=None) == []
    assert count.value == 0


@pytest.mark.parametrize("by", ["orcid", "name", "both"])
def test_statement_count_does_not_grow_with_the_number_of_works(app, statements, by):
    def counted() -> tuple[int, int]:
        person = find_person("42")
        assert person is not None
        with statements() as count:
            if by == "orcid":
                works = find_person_works(person)
            else:
                works = find_works(orcid=JANE if by == "both" else None, name="Smith, Jane", year="2019")
        return len(works), count.value

    add_person(42, "Smith, Jane", JANE if by == "orcid" else None)
    add_works(1)
    few, few_statements = counted()
    add_works(199, start=1)
    many, many_statements = counted()
    assert few == 1 and many > 60
    assert few_statements == many_statements == 1


def test_find_person_reads_the_local_record_and_the_live_orcid(app):
    add_person(123456, "Smith, Jane", JANE, orcid_name="Jane Smith")
    person = find_person("123456")
    assert (person.person_id, person.name, person.orcid, person.orcid_name) == (
        "123456",
        "Smith, Jane",
        JANE,
        "Jane Smith",
    )
    assert find_person("999") is None
    assert find_person("abc") is None


def test_find_person_ignores_deleted_orcid_rows_and_falls_back_to_the_orcid_name(app):
    db.session.add(Orcid(email="a@example.edu", orcid=JOHN, name="John Doe", localPersonID=7, deleted=T1))
    db.session.commit()
    assert find_person("7") is None
    db.session.add(Orcid(email="a@example.edu", orcid=JANE, name="Jane Smith", localPersonID=7))
    db.session.commit()
    person = find_person("7")
    assert (person.name, person.orcid, person.display_name) == (None, JANE, "Jane Smith")


def test_local_person_without_orcid_gets_works_by_name(app):
    add_person(5, "Smith, Jane")
    write_record("dspace", "10754/1", item("10754/1", "Named", [author("Smith, Jane")]), T0)
    person = find_person("5")
    assert person.orcid is None
    assert [w.handle for w in find_person_works(person)] == ["10754/1"]


def test_people_with_orcid_are_read_in_chunks(app, statements):
    for n in range(1, 8):
        add_person(n, f"Person, {n}", f"0000-0000-0000-000{n}")
    db.session.add(Orcid(email="x@example.edu", orcid="0000-0000-0000-0099", name="No Local", localPersonID=99))
    db.session.add(Orcid(email="y@example.edu", orcid="0000-0000-0000-0098", name="Gone", localPersonID=98, deleted=T1))
    db.session.commit()
    with statements() as count:
        people = list(iter_people_with_orcid(chunk_size=3))
    assert [p.person_id for p in people] == ["1", "2", "3", "4", "5", "6", "7", "99"]
    assert people[0].name == "Person, 1" and people[-1].display_name == "No Local"
    assert count.value == 3 * 2 + 1  # three chunks of two statements, and the empty read that ends it


def test_fields_limit_what_is_read(app):
    add_person(9, "Smith, Jane", JANE)
    add_works(2)
    (work, _) = find_works(orcid=JANE, fields=["dc.title", "dc.contributor.author"])
    assert set(work.fields) == {"dc.title", "dc.contributor.author"}
    assert work.authors == ["Smith, Jane", "Doe, John"]
    assert find_person_works(find_person("9"), fields=["dc.title"])[0].fields == {"dc.title": ["Work 0"]}


def test_ids_beyond_the_integer_column_are_looked_up_without_error(app):
    assert find_person("9" * 12) is None
    assert find_person("9" * 64) is None


@pytest.mark.skipif(not SERVER_URL, reason="IOI_TEST_DATABASE_URL (MariaDB) not set")
def test_a_work_longer_than_the_aggregate_limit_is_read_row_by_row(app, statements):
    add_works(3)
    long_title = "Ω" * 2000
    write_record("dspace", "10754/1", item("10754/1", long_title, [author("Smith, Jane", "k", JANE)]), T1)
    db.session.commit()
    db.session.execute(sa.text("SET SESSION group_concat_max_len = 1024"))  # MariaDB cuts JSON_ARRAYAGG there
    with statements() as count:
        works = {w.handle: w for w in find_works(orcid=JANE)}
    assert count.value == 2  # the works, then the cut one row by row
    assert works["10754/1"].title == long_title and works["10754/1"].matched_by == {"orcid"}
    assert works["10754/0"].title == "Work 0" and len(works) == 3
