"""The query API's answer cache: reused while the data is unchanged, rebuilt as soon as it changes."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from flask import Response
from test_query import KEY, count_statements, get
from test_query_works import JANE, T1, add_person, add_works, author, item

from ioi.extensions import db
from ioi.models import DataVersion, Metadata
from ioi.query.cache import AnswerCache
from ioi.services import data_versions
from ioi.services.metadata_store import delete_record, write_record, write_records


@pytest.fixture
def jane_api(query_app):
    """Person 42 with an ORCID iD and three works, and a client of an app with the default cache."""
    add_person(42, "Smith, Jane", JANE)
    add_works(3)
    return query_app(QUERY_API_KEYS=KEY).test_client()


def titles(client, **params) -> list[str]:
    response = get(client, tuid="42", request="works", **params)
    assert response.status_code == 200
    return [work["Title"] for work in response.get_json()]


def test_a_repeated_question_is_answered_from_memory_in_one_statement(jane_api):
    first = get(jane_api, tuid="42", request="works", response="csv")
    second = []
    statements = count_statements(lambda: second.append(get(jane_api, tuid="42", request="works", response="csv")))

    assert statements == 1  # the data versions only
    [again] = second
    assert again.status_code == 200 and again.data == first.data
    assert again.headers["Content-Type"] == first.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert again.headers["Content-Disposition"] == first.headers["Content-Disposition"]
    assert again.headers["Content-Length"] == str(len(first.data))
    assert again.headers["Cache-Control"] == "no-store"


def test_each_question_has_its_own_answer(jane_api):
    as_json = get(jane_api, tuid="42", request="works")
    as_csv = get(jane_api, tuid="42", request="works", response="csv")
    iid = get(jane_api, tuid="42", request="orcid")
    year = get(jane_api, tuid="42", request="works", year="2018")
    assert get(jane_api, tuid="42", request="works").data == as_json.data
    assert get(jane_api, tuid="42", request="works", response="csv").data == as_csv.data
    assert (
        get(jane_api, tuid="42", request="orcid").get_json()
        == iid.get_json()
        == {
            "TU ID": "42",
            "Full Name": "Smith, Jane",
            "ORCID": JANE,
        }
    )
    assert len(get(jane_api, tuid="42", request="works", year="2018").get_json()) == len(year.get_json()) == 1
    assert len(as_json.get_json()) == 3


def test_a_harvested_change_shows_at_once(jane_api):
    assert titles(jane_api) == titles(jane_api)
    record = item("10754/1", "Work 1, corrected", [author("Smith, Jane", f"key-{JANE}", JANE)], issued="2018-02-15")
    write_record("dspace", "10754/1", record, T1)
    db.session.commit()
    assert "Work 1, corrected" in titles(jane_api)


def test_a_withdrawn_item_disappears_at_once(jane_api):
    assert len(titles(jane_api)) == 3
    delete_record("dspace", "10754/2", T1)
    db.session.commit()
    assert sorted(titles(jane_api)) == ["Work 0", "Work 1"]


def test_a_new_name_from_the_hr_upload_shows_at_once(jane_api):
    assert get(jane_api, tuid="42", request="orcid").get_json()["Full Name"] == "Smith, Jane"
    write_record("local", "person_42", {"local.person.id": ["42"], "local.person.name": ["Smith-Jones, Jane"]}, T1)
    db.session.commit()
    assert get(jane_api, tuid="42", request="orcid").get_json()["Full Name"] == "Smith-Jones, Jane"


def test_an_unchanged_harvest_keeps_the_cached_answers(jane_api):
    titles(jane_api)
    before = data_versions.current()
    records = {
        f"10754/{n}": item(
            f"10754/{n}",
            f"Work {n}",
            [author("Smith, Jane", f"key-{JANE}", JANE), author("Doe, John", "key-2")],
            issued=f"{2019 - n % 3}-0{n % 9 + 1}-15",
        )
        for n in range(3)
    }
    write_records("dspace", records, T1)  # the same values as add_works wrote
    db.session.commit()
    assert data_versions.current() == before
    assert count_statements(lambda: titles(jane_api)) == 1


def test_a_change_made_outside_ioi_shows_after_the_longest_reuse(query_app):
    add_person(42, "Smith, Jane", JANE)
    add_works(1)
    client = query_app(QUERY_API_KEYS=KEY, QUERY_CACHE_SECONDS=1).test_client()
    assert titles(client) == ["Work 0"]
    db.session.execute(  # as a DBA, or the PHP IOI, would: no counter is bumped
        sa.update(Metadata).where(Metadata.field == "dc.title", Metadata.deleted.is_(None)).values(value="Edited")
    )
    db.session.commit()
    assert titles(client) == ["Work 0"]
    time.sleep(1.1)
    assert titles(client) == ["Edited"]


def test_errors_are_never_kept(jane_api):
    assert get(jane_api, tuid="77", request="works").status_code == 404
    assert count_statements(lambda: get(jane_api, tuid="77", request="works")) == 2  # versions, then the person
    assert get(jane_api, tuid="42", request="works", year="20x9").status_code == 400


def test_no_cache_when_its_size_is_zero(query_app):
    add_person(42, "Smith, Jane", JANE)
    add_works(2)
    client = query_app(QUERY_API_KEYS=KEY, QUERY_CACHE_MB=0).test_client()
    titles(client)
    assert count_statements(lambda: titles(client)) == 2  # the person, then the works: no versions read


def test_the_bulk_export_is_never_kept(jane_api):
    first = get(jane_api, tuid="all", request="orcid", response="csv")
    assert first.is_streamed and len(first.get_data(as_text=True).splitlines()) == 2
    add_person(43, "Roe, Rick", "0000-0002-9079-593X")
    second = get(jane_api, tuid="all", request="orcid", response="csv")
    assert second.is_streamed and len(second.get_data(as_text=True).splitlines()) == 3


def test_counters_start_at_zero_and_count_each_bump(app):
    assert data_versions.current() == (0, 0)
    data_versions.bump("orcids")
    data_versions.bump("orcids")
    db.session.commit()
    data_versions.bump("metadata")
    db.session.rollback()  # a rolled back change leaves its counter alone
    assert data_versions.current() == (0, 2)
    assert db.session.get(DataVersion, "orcids").version == 2


def test_the_cache_keeps_to_its_size(app):
    cache = AnswerCache(max_bytes=3500, max_age=60)  # room for two 1000-byte answers
    built = []

    def build(size: int):
        def make() -> Response:
            built.append(size)
            return Response(b"x" * size, content_type="text/plain")

        return make

    assert cache.answer("big", build(5000)).data == b"x" * 5000  # larger than the cache: served, not kept
    cache.answer("big", build(5000))
    cache.answer("a", build(1000))
    cache.answer("b", build(1000))
    cache.answer("a", build(1000))  # kept; now the most recently used
    cache.answer("c", build(1000))  # pushes out "b", the least recently used
    cache.answer("a", build(1000))
    cache.answer("b", build(1000))
    assert built == [5000, 5000, 1000, 1000, 1000, 1000]
