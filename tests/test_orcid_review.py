"""The review page: states from putCodes and choices, and a constant number of SQL statements."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from sqlalchemy import insert
from test_orcid_support import NOW, PERSON_EMAIL, PERSON_ID, seed_org_and_position, seed_works

from ioi.auth import Identity
from ioi.extensions import db
from ioi.models import Orcid, PutCode
from ioi.services import review, tokens
from ioi.services.people import create_person_from_identity
from ioi.services.selections import record_choices
from ioi.timeutil import now as local_now

ORCID = "0000-0002-1825-0097"


@pytest.fixture
def connected(app):
    """A signed-in person with a known iD and a live update token (no ORCID calls needed to list)."""
    seed_org_and_position()
    identity = Identity(PERSON_ID, PERSON_EMAIL, "Jane Q. Doe", "Associate Professor", "Physical Sciences")
    create_person_from_identity(identity, NOW)
    client = app.test_client()
    with client.session_transaction() as session:
        session["identity"] = {**asdict(identity), "start_date": None}
    db.session.add(Orcid(orcid=ORCID, email=PERSON_EMAIL, name="Jane Doe", localPersonID=int(PERSON_ID)))
    response = {
        "access_token": "a" * 36,
        "refresh_token": "r" * 36,
        "expires_in": 631138518,
        "scope": "/authenticate /read-limited /activities/update",
        "name": "Jane Doe",
        "orcid": ORCID,
    }
    tokens.store_token(app.extensions["ioi.settings"], response, local_now())
    db.session.commit()
    return app, client


def put_on_orcid(local_id: str, kind: str = "work") -> None:
    row = {"orcid": ORCID, "type": kind, "localSourceRecordID": local_id, "submittedData": "<work/>"}
    db.session.execute(insert(PutCode), [{**row, "putCode": "1", "format": "xml", "apiResponse": "201"}])


def test_states_come_from_put_codes_and_choices(connected):
    works = seed_works(4, orcid=ORCID)
    put_on_orcid(works[0])
    record_choices(ORCID, "work", [works[0], works[1]], [works[2]], NOW)
    db.session.commit()

    listing = review.build_review(PERSON_ID, "Jane Q. Doe", ORCID, member=True, failed=[works[3]])
    states = {w.local_id: w.state for w in listing.works}

    assert states == {works[0]: "on_orcid", works[1]: "waiting", works[2]: "ignored", works[3]: "new"}
    assert [w.checked for w in listing.works if w.local_id == works[2]] == [False]
    by_orcid = {w.local_id for w in listing.works if w.matched_by_orcid}
    assert by_orcid == {works[1], works[3]}  # the even-numbered items carry the iD
    assert all(w.matched_by_name for w in listing.works)
    [affiliation] = listing.affiliations
    assert (affiliation.type, affiliation.title, affiliation.state) == ("employment", "Associate Professor", "new")
    assert affiliation.department == "Test University (Physical Sciences)"


def test_non_members_see_works_only(connected):
    seed_works(2)
    listing = review.build_review(PERSON_ID, "Jane Q. Doe", ORCID, member=False)
    assert len(listing.works) == 2 and listing.affiliations == []
    assert {w.state for w in listing.works} == {"new"}


def test_review_page_and_history_for_a_thousand_works_use_as_many_statements_as_for_ten(connected, statements):
    _, client = connected
    works = seed_works(10, orcid=ORCID)
    put_on_orcid(works[0])
    db.session.commit()
    with statements() as few:
        small = client.get("/orcid/review")
    with statements() as few_home:
        client.get("/orcid")
    assert small.status_code == 200, small.headers.get("Location")
    assert small.get_data(as_text=True).count('name="item"') == 11

    works += seed_works(990, orcid=ORCID, start=11)
    record_choices(ORCID, "work", works[100:400], works[400:500], NOW)
    for local_id in works[1:50]:
        put_on_orcid(local_id)
    db.session.commit()
    with statements() as many:
        large = client.get("/orcid/review")
    with statements() as many_home:
        home = client.get("/orcid")

    assert large.get_data(as_text=True).count('name="item"') == 1001
    assert many.value == few.value
    assert many.value <= 15
    assert ">1000<" in home.get_data(as_text=True)  # the history card counts them
    assert many_home.value == few_home.value


def test_an_ignored_item_still_on_orcid_says_so_and_stays_unchecked(connected):
    [work] = seed_works(1)
    put_on_orcid(work)
    record_choices(ORCID, "work", [], [work], NOW)
    db.session.commit()

    [item] = review.build_review(PERSON_ID, "Jane Q. Doe", ORCID, member=True).works

    assert (item.state, item.checked, item.state_label) == ("removing", False, "Ignored, still on ORCID")


def test_a_sync_run_for_another_person_does_not_make_a_work_failed(connected):
    from datetime import timedelta

    from ioi.models import Message
    from ioi.services import task_state, work_sync

    works = seed_works(2)
    task_state.write_time(work_sync.PROCESS, work_sync.SINCE, NOW - timedelta(hours=2), NOW)  # the last full run
    record_choices(ORCID, "work", works, [], NOW)
    db.session.add(Message(process=work_sync.PROCESS, type="summary", message="-", timestamp=NOW + timedelta(hours=1)))
    db.session.commit()  # that report is an admin's run for somebody else (orcid=...)
    assert {w.state for w in review.build_review(PERSON_ID, "Jane Q. Doe", ORCID, member=True).works} == {"waiting"}

    task_state.write_time(work_sync.PROCESS, work_sync.SINCE, NOW + timedelta(hours=2), NOW)  # a full run since
    db.session.commit()
    assert {w.state for w in review.build_review(PERSON_ID, "Jane Q. Doe", ORCID, member=True).works} == {"failed"}


def test_a_selected_item_is_waiting_until_a_nightly_run_has_tried_it_then_failed(connected):
    from datetime import timedelta

    from ioi.models import Message

    works = seed_works(2)
    record_choices(ORCID, "work", works, [], NOW)
    db.session.add(Message(process="syncWorksToORCID", type="summary", message="-", timestamp=NOW - timedelta(hours=1)))
    db.session.commit()
    listing = review.build_review(PERSON_ID, "Jane Q. Doe", ORCID, member=True)
    assert {w.state for w in listing.works} == {"waiting"}

    db.session.add(Message(process="syncWorksToORCID", type="summary", message="-", timestamp=NOW + timedelta(hours=1)))
    db.session.commit()
    listing = review.build_review(PERSON_ID, "Jane Q. Doe", ORCID, member=True)
    assert {w.state for w in listing.works} == {"failed"}
    assert {a.state for a in listing.affiliations} == {"new"}  # the affiliation task has not run
