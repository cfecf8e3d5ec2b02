"""The one ORCID write path against the ORCID simulator over real HTTP: POST/PUT/no call, DELETE,
self-healing (401, 409, 404, 5xx, timeouts), audit rows, and the researcher page's sync_choices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import make_app

from ioi import settings_of
from ioi.extensions import db
from ioi.models import Orcid, OrcidCall, PutCode
from ioi.orcid_documents import Organization, schemas_available, validate
from ioi.sandbox.orcid import OrcidSimulator
from ioi.services import orcid_api, tokens
from ioi.services.metadata_store import Value, write_record, write_records
from ioi.services.orcid_sync import (
    OrcidWriter,
    affiliation_document,
    live_put_codes,
    sync_choices,
    work_document,
    work_local_id,
)
from ioi.services.people import read_person
from ioi.services.selections import record_choices

NOW = datetime(2026, 11, 24, 12, 0, 0)
ROR = "https://ror.org/01q3tbs38"
FAST = {"backoff": 0.01, "max_backoff": 0.02, "timeout": (2.0, 2.0), "max_attempts": 3}


@pytest.fixture(scope="module")
def running():
    """One simulator and server per module; tests reset its state."""
    simulator = OrcidSimulator(rate=None)
    with simulator.serve() as server:
        yield simulator, server


@pytest.fixture
def sim(running) -> OrcidSimulator:
    simulator, _ = running
    simulator.reset()
    simulator.set_rate_limit(None)
    return simulator


def sim_settings(sim: OrcidSimulator, url: str) -> dict:
    client = sim.register_client(name="IOI test")
    return {
        "ORCID_API_URL": f"{url}/v3.0/",
        "OAUTH_TOKEN_URL": f"{url}/oauth/token",
        "OAUTH_REVOKE_URL": f"{url}/oauth/revoke",
        "OAUTH_CLIENT_ID": client.client_id,
        "OAUTH_CLIENT_SECRET": client.client_secret,
        "INSTITUTION_ROR_ID": ROR,
        "INSTITUTION_CITY": "Thuwal",
        "INSTITUTION_COUNTRY": "SA",
        "ORCID_MAX_RPS": 24,
        "ORCID_BURST": 40,
    }


@pytest.fixture
def orcid_app(migrated, running, sim):
    """An app whose ORCID endpoints and client are the simulator's."""
    from conftest import _reset_tables

    _, server = running
    app = make_app(migrated, **sim_settings(sim, server.url))
    with app.app_context():
        _reset_tables()
        yield app
        db.session.remove()
        orcid_api.flush_call_log()
        db.engine.dispose()


@dataclass
class Researcher:
    orcid: str
    person_id: str
    token: tokens.TokenInfo
    handles: list[str]


def add_items(handles_by_orcid: dict[str, list[str]], now: datetime = NOW) -> None:
    """Harvested repository items whose first author carries the given ORCID iD."""
    records = {}
    for orcid, handles in handles_by_orcid.items():
        for handle in handles:
            number = handle.rsplit("/", 1)[-1]
            author = Value(
                "Garcia, Sofia", {"dspace.authority.key": [Value(f"k-{orcid}", {"dc.identifier.orcid": [orcid]})]}
            )
            records[handle] = {
                "dc.title": [f"Work number {number}"],
                "dc.contributor.author": [author],
                "dc.type": ["Article"],
                "dc.date.issued": ["2021-03-05"],
                "dc.identifier.uri": [f"http://hdl.handle.net/{handle}"],
                "dc.identifier.doi": [f"10.1000/{number}"],
                "dc.identifier.journal": ["Journal of Tests"],
            }
    write_records("dspace", records, now)


def add_person(person_id: str, orcid: str, now: datetime = NOW) -> None:
    """A local person with two positions (an employment and a student position) and their orgs."""
    write_record(
        "local",
        "org_10",
        {"local.org.id": ["10"], "local.org.name": ["Test University"], "local.org.type": ["university"]},
        now,
    )
    write_record(
        "local",
        "org_11",
        {
            "local.org.id": ["11"],
            "local.org.name": ["Chemistry"],
            "local.org.type": ["department"],
            "local.org.parent": ["10"],
        },
        now,
    )
    positions = [
        Value(
            f"{person_id}_11_2019-09-01",
            {"local.org.id": ["11"], "local.person.title": ["Research Scientist"], "local.date.start": ["2019-09-01"]},
        ),
        Value(
            f"{person_id}_10_2014-09-01",
            {
                "local.org.id": ["10"],
                "local.person.title": ["PhD Student"],
                "local.date.start": ["2014-09-01"],
                "local.date.end": ["2019-06-30"],
            },
        ),
    ]
    write_record(
        "local",
        f"person_{person_id}",
        {
            "local.person.name": ["Garcia, Sofia"],
            "local.person.id": [person_id],
            "local.personOrgRelation.id": positions,
        },
        now,
    )
    db.session.add(
        Orcid(email=f"p{person_id}@example.edu", orcid=orcid, name="Sofia Garcia", localPersonID=int(person_id))
    )


def connect(sim: OrcidSimulator, settings, orcid: str, scope: str = "/read-limited /activities/update"):
    """Issue a token at the simulator and store it as the OAuth callback would."""
    client_id = settings.OAUTH_CLIENT_ID
    issued = sim.issue_token(client_id, orcid, scope)
    return tokens.store_token(
        settings,
        {"access_token": issued.access_token, "refresh_token": issued.refresh_token, "expires_in": 631138518,
         "scope": issued.scope, "orcid": orcid, "name": "Sofia Garcia"},
        NOW,
    )  # fmt: skip


def make_researchers(sim: OrcidSimulator, settings, people: int, works_each: int) -> list[Researcher]:
    """`people` researchers, each with a person record, an ORCID record, a token and works."""
    found = []
    handles_by_orcid = {}
    for index in range(people):
        researcher = sim.create_researcher("Sofia", f"Garcia{index}")
        person_id = str(1000 + index)
        handles = [f"10754/{person_id}{n:04d}" for n in range(works_each)]
        handles_by_orcid[researcher.orcid] = handles
        add_person(person_id, researcher.orcid)
        found.append(Researcher(researcher.orcid, person_id, connect(sim, settings, researcher.orcid), handles))
    add_items(handles_by_orcid)
    db.session.commit()
    return found


def on_orcid(sim: OrcidSimulator, orcid: str, section: str = "work") -> list:
    return sim.items(orcid, section)


# ------------------------------------------------------------------------------------ documents


@pytest.mark.skipif(not schemas_available(), reason="ORCID XSDs not available")
def test_documents_from_local_data_are_schema_valid(orcid_app):
    settings = settings_of(orcid_app)
    add_items({"0000-0002-1825-0097": ["10754/1"]})
    add_person("7", "0000-0002-1825-0097")
    db.session.commit()
    assert validate(work_document("10754/1")) == []
    person = read_person("7")
    org = Organization.from_settings(settings)
    for position, kind in zip(person.positions, ("employment", "education"), strict=True):
        document = affiliation_document(person, position, org, kind)
        assert validate(document) == []
        assert b"https://ror.org/01q3tbs38" in document and b"<common:disambiguation-source>ROR" in document
    department = affiliation_document(person, person.positions[0], org)
    assert b"Test University (Chemistry)" in department


def test_ringgold_is_used_when_no_ror_id_is_set(orcid_app):
    add_person("7", "0000-0002-1825-0097")
    db.session.commit()
    person = read_person("7")
    org = Organization("Test University", "Thuwal", "SA", ringgold_id="127355")
    document = affiliation_document(person, person.positions[0], org)
    assert b"<common:disambiguation-source>RINGGOLD" in document and b">127355<" in document


# -------------------------------------------------------------------------------------- writing


def writer_for(app, researcher: Researcher, **client_options) -> OrcidWriter:
    settings = settings_of(app)
    client = orcid_api.make_client(settings, "test", **{**FAST, **client_options})
    return OrcidWriter(settings, client, researcher.orcid, researcher.token, NOW)


def test_post_then_identical_makes_no_call_then_changed_content_is_put(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 1)
    writer = writer_for(orcid_app, r)
    local_id = work_local_id(r.handles[0])
    document = work_document(r.handles[0])
    first = writer.push("work", local_id, document)
    db.session.commit()
    assert first.status == "added" and first.put_code
    sim.clear_calls()
    assert writer.push("work", local_id, document).status == "unchanged"
    assert sim.calls == []
    changed = document.replace(b"Work number", b"Revised work number")
    result = writer.push("work", local_id, changed)
    db.session.commit()
    assert (result.status, result.put_code) == ("updated", first.put_code)
    [item] = on_orcid(sim, r.orcid)
    assert b"Revised work number" in item.stored
    rows = db.session.scalars(sa.select(PutCode).order_by(PutCode.rowID)).all()
    assert len(rows) == 2 and rows[0].replacedByRowID == rows[1].rowID and rows[0].deleted == NOW
    assert rows[1].deleted is None and 'put-code="' in rows[1].submittedData and rows[1].format == "xml"


def test_delete_removes_the_item_and_retires_the_put_code(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 1)
    writer = writer_for(orcid_app, r)
    local_id = work_local_id(r.handles[0])
    writer.push("work", local_id, work_document(r.handles[0]))
    assert writer.remove("work", local_id).status == "deleted"
    db.session.commit()
    assert on_orcid(sim, r.orcid) == [] and live_put_codes(r.orcid, "work", local_id) == []
    assert writer.remove("work", local_id).status == "not_on_orcid"


def test_409_adopts_the_put_code_named_in_the_message(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 1)
    writer = writer_for(orcid_app, r)
    local_id = work_local_id(r.handles[0])
    document = work_document(r.handles[0])
    posted = writer.push("work", local_id, document)
    db.session.rollback()  # as if the run died before storing the put-code
    assert live_put_codes(r.orcid, "work", local_id) == []
    again = writer.push("work", local_id, document)
    db.session.commit()
    assert (again.status, again.put_code) == ("adopted", posted.put_code)
    assert len(on_orcid(sim, r.orcid)) == 1
    assert [row.putCode for row in live_put_codes(r.orcid, "work", local_id)] == [posted.put_code]


def test_409_without_a_put_code_is_resolved_by_reading_the_works(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 1)
    writer = writer_for(orcid_app, r)
    local_id = work_local_id(r.handles[0])
    document = work_document(r.handles[0])
    posted = writer.push("work", local_id, document)
    db.session.rollback()
    sim.fail_next(1, 409, method="POST")  # injected 409 names put-code 0 ...
    result = writer.push("work", local_id, document)  # ... PUT 0 is 404, POST again is a real 409
    db.session.commit()
    assert (result.status, result.put_code) == ("adopted", posted.put_code)
    assert len(on_orcid(sim, r.orcid)) == 1


def test_a_legacy_409_message_is_resolved_by_matching_self_ids(orcid_app, sim, monkeypatch):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 1)
    writer = writer_for(orcid_app, r)
    local_id = work_local_id(r.handles[0])
    document = work_document(r.handles[0])
    posted = writer.push("work", local_id, document)
    db.session.rollback()
    monkeypatch.setattr("ioi.clients.orcid.put_code_from_conflict", lambda message: None)
    result = writer.push("work", local_id, document)
    assert (result.status, result.put_code) == ("adopted", posted.put_code)
    assert any(c.method == "GET" and c.path.endswith("/works") for c in sim.calls)


def test_404_on_put_posts_the_item_anew(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 1)
    writer = writer_for(orcid_app, r)
    local_id = work_local_id(r.handles[0])
    first = writer.push("work", local_id, work_document(r.handles[0]))
    db.session.commit()
    writer.client.delete(r.orcid, r.token.access_token, "work", first.put_code)  # the researcher deleted it
    result = writer.push("work", local_id, work_document(r.handles[0]).replace(b"Work", b"Changed work"))
    db.session.commit()
    assert result.status == "added" and result.put_code != first.put_code
    assert [row.putCode for row in live_put_codes(r.orcid, "work", local_id)] == [result.put_code]


def test_401_retires_the_token_and_lists_the_person_for_reconsent(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 2)
    writer = writer_for(orcid_app, r)
    sim.revoke_token(r.token.access_token, by_user=False)
    result = writer.push("work", work_local_id(r.handles[0]), work_document(r.handles[0]))
    db.session.commit()
    assert result.status == "token_invalid" and writer.token_invalid
    calls = len(sim.calls)
    assert writer.push("work", work_local_id(r.handles[1]), work_document(r.handles[1])).status == "token_invalid"
    assert len(sim.calls) == calls
    assert tokens.live_token(settings_of(orcid_app), r.orcid, NOW) is None
    assert [p.orcid for p in tokens.people_needing_reconsent(NOW)] == [r.orcid]


def test_5xx_after_retries_fails_without_storing_anything(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 1)
    writer = writer_for(orcid_app, r)
    sim.fail_next(3, 500)
    result = writer.push("work", work_local_id(r.handles[0]), work_document(r.handles[0]))
    assert result.status == "failed" and "500" in result.message
    assert db.session.scalars(sa.select(PutCode)).all() == []
    assert tokens.live_token(settings_of(orcid_app), r.orcid, NOW) is not None


def test_a_timeout_is_retried(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 1)
    writer = writer_for(orcid_app, r, timeout=(1.0, 0.3))
    sim.timeout_next(1, 0.05)
    assert writer.push("work", work_local_id(r.handles[0]), work_document(r.handles[0])).status == "added"
    assert len(on_orcid(sim, r.orcid)) == 1


def test_dry_run_makes_no_call_and_writes_nothing(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 1)
    settings = settings_of(orcid_app)
    writer = OrcidWriter(settings, orcid_api.make_client(settings, "test"), r.orcid, r.token, NOW, dry_run=True)
    sim.clear_calls()
    assert writer.push("work", work_local_id(r.handles[0]), work_document(r.handles[0])).status == "added"
    assert writer.remove("work", work_local_id(r.handles[0])).status == "not_on_orcid"
    assert sim.calls == [] and db.session.scalars(sa.select(PutCode)).all() == []


def test_every_call_is_audited_without_tokens(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 1)
    writer = writer_for(orcid_app, r)
    sim.fail_next(1, 503)
    writer.push("work", work_local_id(r.handles[0]), work_document(r.handles[0]))
    db.session.rollback()  # audit rows survive a rollback of the work around them
    rows = db.session.scalars(sa.select(OrcidCall).order_by(OrcidCall.callID)).all()
    assert [(c.process, c.method, c.status) for c in rows] == [("test", "POST", 503), ("test", "POST", 201)]
    assert all(c.url.endswith(f"/v3.0/{r.orcid}/work") and c.ms >= 0 for c in rows)
    text = " ".join(f"{c.url} {c.process}" for c in rows)
    assert r.token.access_token not in text and (r.token.refresh_token or "-") not in text


# ------------------------------------------------------------------------------ researcher page


def test_sync_choices_pushes_selected_and_deletes_deselected(orcid_app, sim):
    settings = settings_of(orcid_app)
    [r] = make_researchers(sim, settings, 1, 3)
    person = read_person(r.person_id)
    affiliations = [f"local_person_{r.person_id}_{p.relation_id}" for p in person.positions]
    works = [work_local_id(h) for h in r.handles]
    client = orcid_api.make_client(settings, "researcherPage", **FAST)
    changes = {
        "work": record_choices(r.orcid, "work", works, [], NOW),
        "employment": record_choices(r.orcid, "employment", affiliations[:1], [], NOW),
        "education": record_choices(r.orcid, "education", affiliations[1:], [], NOW),
    }
    outcome = sync_choices(settings, client, r.orcid, r.token, changes, NOW, commit=db.session.commit)
    assert (outcome.works.newly_selected, outcome.works.added_to_orcid, outcome.works.failed) == (3, 3, 0)
    assert (outcome.affiliations.newly_selected, outcome.affiliations.added_to_orcid) == (2, 2)
    assert len(on_orcid(sim, r.orcid, "employment")) == 1 and len(on_orcid(sim, r.orcid, "education")) == 1

    later = NOW + timedelta(hours=1)
    changes = {"work": record_choices(r.orcid, "work", works[1:], works[:1], later)}
    db.session.commit()
    sim.clear_calls()
    outcome = sync_choices(settings, client, r.orcid, r.token, changes, later)
    db.session.commit()
    w = outcome.works
    assert (w.previously_selected, w.already_on_orcid, w.ignored, w.removed_from_orcid) == (2, 2, 1, 1)
    assert [c.method for c in sim.calls] == ["DELETE"]
    assert len(on_orcid(sim, r.orcid)) == 2


def test_sync_choices_reports_failures_and_keeps_the_choices(orcid_app, sim):
    settings = settings_of(orcid_app)
    [r] = make_researchers(sim, settings, 1, 2)
    works = [work_local_id(h) for h in r.handles]
    client = orcid_api.make_client(settings, "researcherPage", **FAST)
    changes = {"work": record_choices(r.orcid, "work", works, [], NOW)}
    sim.fail_next(3, 500, method="POST")
    outcome = sync_choices(settings, client, r.orcid, r.token, changes, NOW)
    db.session.commit()
    assert (outcome.works.added_to_orcid, outcome.works.failed, outcome.works.failed_ids) == (1, 1, works[:1])
    assert not outcome.needs_reconsent
    from ioi.services.selections import live_choices

    assert live_choices(r.orcid, "work") == {w: "selected" for w in works}


def test_sync_choices_stops_on_a_refused_token(orcid_app, sim):
    settings = settings_of(orcid_app)
    [r] = make_researchers(sim, settings, 1, 2)
    works = [work_local_id(h) for h in r.handles]
    client = orcid_api.make_client(settings, "researcherPage", **FAST)
    changes = {"work": record_choices(r.orcid, "work", works, [], NOW)}
    sim.fail_next(1, 401)
    outcome = sync_choices(settings, client, r.orcid, r.token, changes, NOW)
    db.session.commit()
    assert outcome.needs_reconsent and outcome.works.failed == 2
    assert len(sim.calls) == 1


def test_two_items_with_the_same_doi_are_not_merged_on_orcid(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 2)
    writer = writer_for(orcid_app, r)
    first, second = (work_local_id(h) for h in r.handles)
    document = work_document(r.handles[0])
    assert writer.push("work", first, document).status == "added"
    twin = document.replace(b"Work number", b"Twin of work number")  # same DOI and handle ids
    result = writer.push("work", second, twin)
    db.session.commit()
    assert result.status == "duplicate" and "repository_" in result.message
    [item] = on_orcid(sim, r.orcid)
    assert b"Twin" not in item.stored and live_put_codes(r.orcid, "work", second) == []


def test_audit_rows_wait_for_the_work_to_commit_and_are_then_written(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 1)
    writer = writer_for(orcid_app, r)
    started = orcid_api.local_now() - timedelta(minutes=1)
    writer.push("work", work_local_id(r.handles[0]), work_document(r.handles[0]))  # a put-code row, uncommitted
    orcid_api.flush_call_log()  # on SQLite this must not wait for the session's write lock
    db.session.commit()
    rows = orcid_api.call_rows_since(started, "test")
    assert [(c.method, c.status) for c in rows] == [("POST", 201)] and orcid_api.pending_call_rows() == 0
