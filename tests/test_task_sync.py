"""The sync tasks against the ORCID simulator: counters, reruns, dry run, random faults healed by
reruns, a run killed mid-way, concurrent runs, and the affiliations task's "since the last run"."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_orcid_sync import FAST, NOW, Researcher, connect, make_researchers, on_orcid, running, sim, sim_settings

from ioi import settings_of
from ioi.extensions import db
from ioi.models import Message, PutCode
from ioi.orcid_documents import self_external_ids
from ioi.services import orcid_api, task_state, tokens, work_sync
from ioi.services.affiliation_sync import PROCESS as AFFILIATIONS
from ioi.services.affiliation_sync import sync_affiliations
from ioi.services.metadata_store import Value, read_record, write_record, write_records
from ioi.services.orcid_sync import work_local_id
from ioi.services.selections import live_choices, record_choices
from ioi.services.work_sync import PROCESS as WORKS
from ioi.services.work_sync import sync_works
from ioi.taskframe import run_task
from ioi.timeutil import now as local_now

__all__ = ["running", "sim"]  # fixtures shared with test_orcid_sync
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def orcid_app(migrated, running, sim, tmp_path):
    from conftest import _reset_tables, make_app

    _, server = running
    app = make_app(migrated, **sim_settings(sim, server.url))
    app.instance_path = str(tmp_path)  # the SQLite task lock file: not shared with a demo or bench running meanwhile
    with app.app_context():
        _reset_tables()
        yield app
        db.session.remove()
        orcid_api.flush_call_log()
        db.engine.dispose()


def run_works(app, argv=(), **client_options) -> tuple[int, str]:
    """Run syncWorksToORCID in this process with a fast-retrying client; (exit status, summary)."""
    settings = settings_of(app)

    def work(ctx):
        sync_works(ctx, lambda: orcid_api.make_client(settings, WORKS, **{**FAST, **client_options}))

    status = run_task(WORKS, "Sync works", work, list(argv), options=("from_date", "handle", "orcid"), app=app)
    return status, summary(WORKS)


def run_affiliations(app, argv=()) -> tuple[int, str]:
    settings = settings_of(app)

    def work(ctx):
        with orcid_api.make_client(settings, AFFILIATIONS, **FAST) as client:
            sync_affiliations(ctx, client)

    status = run_task(AFFILIATIONS, "Sync affiliations", work, list(argv), options=("from_date", "orcid"), app=app)
    return status, summary(AFFILIATIONS)


def summary(process: str) -> str:
    db.session.remove()
    query = sa.select(Message.message).where(Message.process == process, Message.type == "summary")
    rows = db.session.scalars(query.order_by(Message.messageID.desc())).all()
    return rows[0] if rows else ""


def age_last_run(process: str) -> None:
    """Pretend the previous run was long ago (so items written since count as changed)."""
    long_ago = local_now() - timedelta(days=1)
    db.session.execute(sa.update(Message).where(Message.process == process).values(timestamp=long_ago))
    if task_state.read(process, work_sync.SINCE) is not None:
        task_state.write_time(process, work_sync.SINCE, long_ago, local_now())
    db.session.commit()


def dois_on_orcid(sim, orcid: str) -> list[str]:
    return sorted(v for item in on_orcid(sim, orcid) for t, v in self_external_ids(item.stored) if t == "doi")


def expected_dois(r: Researcher, skip: set[str] = frozenset()) -> list[str]:
    return sorted(f"10.1000/{h.rsplit('/', 1)[-1]}" for h in r.handles if h not in skip)


# ------------------------------------------------------------------------------------------- works


def test_first_run_posts_every_linked_work_and_an_unchanged_rerun_makes_no_call(orcid_app, sim):
    people = make_researchers(sim, settings_of(orcid_app), 2, 3)
    status, text = run_works(orcid_app)
    assert status == 0
    assert "- 6 all items" in text and "- 6 new items" in text and "- 0 errors" in text
    for r in people:
        assert dois_on_orcid(sim, r.orcid) == expected_dois(r)
    sim.clear_calls()
    status, text = run_works(orcid_app)
    assert status == 0 and sim.calls == []


def test_changed_items_are_put_and_identical_ones_skipped(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 3)
    run_works(orcid_app)
    age_last_run(WORKS)
    item = read_record("dspace", r.handles[0])
    write_record("dspace", r.handles[0], {**item, "dc.title": ["A better title"]}, local_now())
    write_records("dspace", {r.handles[1]: read_record("dspace", r.handles[1])}, local_now())  # no change
    db.session.commit()
    sim.clear_calls()
    status, text = run_works(orcid_app, ["fromDate=2000-01-01"])
    assert status == 0
    assert "- 1 modified items" in text and "- 2 skipped - previously submitted XML was identical items" in text
    assert [c.method for c in sim.calls] == ["PUT"]
    assert any(b"A better title" in i.stored for i in on_orcid(sim, r.orcid))


def test_a_run_for_one_person_or_a_crashed_run_leaves_the_next_runs_start_where_it_was(orcid_app, sim, monkeypatch):
    first, second = make_researchers(sim, settings_of(orcid_app), 2, 2)
    run_works(orcid_app)
    age_last_run(WORKS)  # the last complete run: a day ago
    item = read_record("dspace", first.handles[0])
    write_record(
        "dspace", first.handles[0], {**item, "dc.title": ["Changed this morning"]}, local_now() - timedelta(hours=3)
    )
    db.session.commit()
    sim.clear_calls()
    assert run_works(orcid_app, [f"orcid={second.orcid}"])[0] == 0  # an admin's run for one person
    plan = work_sync.plan
    monkeypatch.setattr(work_sync, "plan", lambda *args: 1 / 0)
    assert run_works(orcid_app)[0] == 1  # a run that crashed
    monkeypatch.setattr(work_sync, "plan", plan)
    assert sim.calls == []

    status, text = run_works(orcid_app)
    assert status == 0 and "- 1 modified items" in text, text
    assert [c.method for c in sim.calls] == ["PUT"]
    assert any(b"Changed this morning" in i.stored for i in on_orcid(sim, first.orcid))
    sim.clear_calls()
    assert run_works(orcid_app)[0] == 0 and sim.calls == []  # that complete run moved the start on


def test_ignored_works_are_not_sent_and_are_removed_from_orcid(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 3)
    run_works(orcid_app)
    record_choices(r.orcid, "work", [], [work_local_id(r.handles[0])], local_now())
    db.session.commit()
    status, text = run_works(orcid_app, ["--from-date", "2000-01-01"])
    assert (
        status == 0 and "- 1 ignored - user deselected items" in text and "- 1 removed - user deselected items" in text
    )
    assert dois_on_orcid(sim, r.orcid) == expected_dois(r, {r.handles[0]})


def test_people_without_a_live_token_or_scope_are_skipped(orcid_app, sim):
    settings = settings_of(orcid_app)
    first, second = make_researchers(sim, settings, 2, 2)
    tokens.retire_tokens(settings, first.orcid, "disconnected", NOW)
    tokens.retire_tokens(settings, second.orcid, "scope_changed", NOW)
    connect(sim, settings, second.orcid, "/authenticate /read-limited")
    db.session.commit()
    status, text = run_works(orcid_app)
    assert status == 0 and sim.calls == []
    assert "- 2 skipped - no permission token items" in text and "- 2 skipped - no update scope items" in text


def test_dry_run_makes_no_call_and_writes_nothing(orcid_app, sim, capsys):
    make_researchers(sim, settings_of(orcid_app), 2, 2)
    sim.clear_calls()
    out = io.StringIO()
    settings = settings_of(orcid_app)

    def work(ctx):
        sync_works(ctx, lambda: orcid_api.make_client(settings, WORKS, **FAST))

    assert run_task(WORKS, "Sync works", work, ["--dry-run"], app=orcid_app, out=out) == 0
    assert sim.calls == []
    assert db.session.scalars(sa.select(PutCode)).all() == [] and db.session.scalars(sa.select(Message)).all() == []
    assert out.getvalue().count("DRY RUN: would add 10754/") == 4


def test_random_faults_are_healed_by_reruns_without_duplicates_or_lost_choices(orcid_app, sim):
    settings = settings_of(orcid_app)
    people = make_researchers(sim, settings, 4, 10)
    # The first person also chose: two name-matched extra works selected, one linked work ignored.
    extra = ["10754/90001", "10754/90002"]
    write_records(
        "dspace",
        {
            h: {"dc.title": [f"Extra {h}"], "dc.identifier.uri": [f"http://hdl.handle.net/{h}"],
                "dc.contributor.author": [Value("Garcia, Sofia")], "dc.identifier.doi": [f"10.1000/{h[-5:]}"]}
            for h in extra
        },
        NOW,
    )  # fmt: skip
    chosen = [work_local_id(h) for h in extra]
    ignored = [work_local_id(people[0].handles[0])]
    record_choices(people[0].orcid, "work", chosen, ignored, NOW)
    db.session.commit()
    before = live_choices(people[0].orcid, "work")

    sim.fail_randomly(0.1, seed=11, statuses=(500, 503, 401, 404, 409))
    for run in range(12):
        if run == 1:  # changed metadata: updates (PUTs) meet the faults too
            for r in people:
                item = read_record("dspace", r.handles[-1])
                write_record("dspace", r.handles[-1], {**item, "dc.title": ["Revised"]}, local_now())
            db.session.commit()
        if run % 3 == 0:
            sim.timeout_next(1, 0.05, method="POST")
        if run < 2:  # each kind of fault at least once, whatever order the threads' calls arrive in
            for status in (409, 401, 500):
                sim.fail_next(1, status, method="POST" if run == 0 else "PUT")
            sim.fail_next(1, 404, method="PUT")
        status, text = run_works(orcid_app, ["fromDate=2000-01-01"], timeout=(1.0, 0.5))
        for needing in tokens.people_needing_reconsent(local_now()):  # the researcher grants again
            connect(sim, settings, needing.orcid)
        db.session.commit()
        complete = all(dois_on_orcid(sim, r.orcid) == expected_dois(r) for r in people[1:]) and dois_on_orcid(
            sim, people[0].orcid
        ) == sorted(expected_dois(people[0], {people[0].handles[0]}) + ["10.1000/90001", "10.1000/90002"])
        if status == 0 and complete and "token refused" not in text:
            break
    else:
        pytest.fail(f"not healed after reruns; last summary:\n{text}")
    sim.clear_faults()
    statuses = {c.status for c in sim.calls}
    assert {500, 503, 401, 404, 409, None} <= statuses, statuses  # None: the dropped (timed-out) calls
    for r in people:
        assert sum(b"Revised" in i.stored for i in on_orcid(sim, r.orcid)) == 1
    assert live_choices(people[0].orcid, "work") == before
    db.session.remove()
    live = db.session.execute(
        sa.select(PutCode.orcid, PutCode.localSourceRecordID, sa.func.count()).where(PutCode.deleted.is_(None))
        .group_by(PutCode.orcid, PutCode.localSourceRecordID)
    ).all()  # fmt: skip
    assert len(live) == 41 and all(n == 1 for *_, n in live)


def test_a_run_stopped_mid_way_and_rerun_leaves_no_duplicate(orcid_app, sim, monkeypatch):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 8)
    real_add = orcid_api.AuditedOrcidClient.add
    calls = {"n": 0}

    def add_then_die(self, *args, **kwargs):
        put_code = real_add(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 4:  # the POST reached ORCID, the put-code never reaches the database
            raise SystemError("killed")
        return put_code

    monkeypatch.setattr(orcid_api.AuditedOrcidClient, "add", add_then_die)
    status, text = run_works(orcid_app)
    assert status == 1 and len(on_orcid(sim, r.orcid)) == 4
    monkeypatch.undo()
    status, text = run_works(orcid_app)
    assert status == 0 and "- 5 new items" in text  # four left, plus the one adopted after its 409
    assert dois_on_orcid(sim, r.orcid) == expected_dois(r)


def task_env(app) -> dict:
    settings = settings_of(app)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCID_", "OAUTH_", "INSTITUTION_"))}
    env.update(
        SECRET_KEY=settings.SECRET_KEY or "",
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        ORCID_API_URL=settings.ORCID_API_URL or "",
        OAUTH_TOKEN_URL=settings.OAUTH_TOKEN_URL or "",
        OAUTH_REVOKE_URL=settings.OAUTH_REVOKE_URL or "",
        OAUTH_CLIENT_ID=settings.OAUTH_CLIENT_ID,
        OAUTH_CLIENT_SECRET=settings.OAUTH_CLIENT_SECRET,
        INSTITUTION_ROR_ID=settings.INSTITUTION_ROR_ID,
        INSTITUTION_NAME=settings.INSTITUTION_NAME,
        INSTITUTION_CITY=settings.INSTITUTION_CITY,
        INSTITUTION_COUNTRY=settings.INSTITUTION_COUNTRY,
        PYTHONPATH=str(ROOT),
    )
    return env


def test_the_task_script_killed_mid_way_and_rerun_leaves_no_duplicate(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 30)
    db.session.remove()
    sim.add_latency(0.05)
    script = ROOT / "tasks" / "sync_works_to_orcid.py"
    process = subprocess.Popen([sys.executable, str(script)], env=task_env(orcid_app), stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while len(on_orcid(sim, r.orcid)) < 5 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    sim.add_latency(0)
    assert 5 <= len(on_orcid(sim, r.orcid)) < 30
    status, text = run_works(orcid_app)
    assert status == 0, text
    assert dois_on_orcid(sim, r.orcid) == expected_dois(r)


def test_two_concurrent_runs_never_double_post(orcid_app, sim):
    people = make_researchers(sim, settings_of(orcid_app), 2, 10)
    db.session.remove()
    sim.add_latency(0.01)
    results: list[int] = []
    outputs: list[str] = []

    def one_run():
        with orcid_app.app_context():
            out = io.StringIO()
            settings = settings_of(orcid_app)

            def work(ctx):
                sync_works(ctx, lambda: orcid_api.make_client(settings, WORKS, **FAST))

            results.append(run_task(WORKS, "Sync works", work, [], app=orcid_app, out=out))
            outputs.append(out.getvalue())
            db.session.remove()

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    sim.add_latency(0)
    assert results == [0, 0] and any("already running" in o for o in outputs)
    for r in people:
        assert dois_on_orcid(sim, r.orcid) == expected_dois(r)


def test_two_writers_without_the_lock_still_post_each_work_once(orcid_app, sim):
    """The researcher page and a task may push the same work at once: ORCID's 409 is adopted."""
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 6)
    db.session.remove()
    errors: list[BaseException] = []

    def push_all():
        try:
            with orcid_app.app_context():
                from ioi.services.orcid_sync import OrcidWriter, work_document

                settings = settings_of(orcid_app)
                writer = OrcidWriter(settings, orcid_api.make_client(settings, "test", **FAST), r.orcid, r.token, NOW)
                for handle in r.handles:
                    writer.push("work", work_local_id(handle), work_document(handle))
                    db.session.commit()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=push_all) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert dois_on_orcid(sim, r.orcid) == expected_dois(r)


# ------------------------------------------------------------------------------------ affiliations


def test_affiliations_are_posted_with_ror_then_only_changes_are_sent(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 0)
    status, text = run_affiliations(orcid_app)
    assert status == 0 and "- 2 new items" in text, text
    [employment] = on_orcid(sim, r.orcid, "employment")
    [education] = on_orcid(sim, r.orcid, "education")
    assert b"https://ror.org/01q3tbs38" in employment.stored and b"Research Scientist" in employment.stored
    assert b"PhD Student" in education.stored
    sim.clear_calls()
    assert run_affiliations(orcid_app)[0] == 0 and sim.calls == []

    # A new end date arrives from HR: the employment is PUT, the rest left alone.
    person = read_record("local", f"person_{r.person_id}")
    position = person["local.personOrgRelation.id"][0]
    position.children["local.date.end"] = [Value("2026-10-31")]
    write_record("local", f"person_{r.person_id}", person, local_now())
    db.session.commit()
    status, text = run_affiliations(orcid_app)
    assert status == 0 and "- 1 updated items" in text, text
    assert [c.method for c in sim.calls] == ["PUT"]
    assert b"<common:year>2026</common:year>" in on_orcid(sim, r.orcid, "employment")[0].stored


def test_affiliations_since_the_last_run_only_new_positions_are_sent(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 0)
    run_affiliations(orcid_app)  # first run: both positions
    # Forget the education put-code as if the position predates IOI: an unchanged old position is not sent.
    db.session.execute(sa.update(PutCode).where(PutCode.type == "education").values(deleted=NOW))
    person = read_record("local", f"person_{r.person_id}")
    person["local.personOrgRelation.id"].append(
        Value(f"{r.person_id}_11_2026-11-01", {"local.org.id": [Value("11")], "local.person.title": [Value("Lecturer")],
                                                "local.date.start": [Value("2026-11-01")]})
    )  # fmt: skip
    write_record("local", f"person_{r.person_id}", person, local_now())
    db.session.commit()
    sim.clear_calls()
    status, text = run_affiliations(orcid_app)
    assert status == 0 and "- 1 new items" in text, text
    assert [c.method for c in sim.calls] == ["POST"]


def test_the_orcid_argument_limits_the_affiliation_run_to_one_person(orcid_app, sim):
    first, second = make_researchers(sim, settings_of(orcid_app), 2, 0)
    status, text = run_affiliations(orcid_app, [f"orcid={second.orcid}"])
    assert status == 0 and "- 2 new items" in text
    assert on_orcid(sim, first.orcid, "employment") == [] and len(on_orcid(sim, second.orcid, "employment")) == 1


def test_an_affiliation_run_for_one_person_leaves_the_next_runs_start_where_it_was(orcid_app, sim):
    first, second = make_researchers(sim, settings_of(orcid_app), 2, 0)
    run_affiliations(orcid_app)
    age_last_run(AFFILIATIONS)
    person = read_record("local", f"person_{first.person_id}")
    details = {"local.org.id": ["11"], "local.person.title": ["Lecturer"], "local.date.start": ["2026-11-01"]}
    person["local.personOrgRelation.id"].append(Value(f"{first.person_id}_11_2026-11-01", details))
    write_record("local", f"person_{first.person_id}", person, local_now() - timedelta(hours=3))  # this morning
    db.session.commit()
    assert run_affiliations(orcid_app, [f"orcid={second.orcid}"])[0] == 0
    sim.clear_calls()
    status, text = run_affiliations(orcid_app)
    assert status == 0 and "- 1 new items" in text, text
    assert [c.method for c in sim.calls] == ["POST"]


def test_a_position_whose_title_changes_kind_moves_between_employment_and_education(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 0)
    run_affiliations(orcid_app)
    age_last_run(AFFILIATIONS)
    person = read_record("local", f"person_{r.person_id}")
    person["local.personOrgRelation.id"][1].children["local.person.title"] = [Value("Research Assistant")]
    write_record("local", f"person_{r.person_id}", person, local_now())
    db.session.commit()
    status, text = run_affiliations(orcid_app)
    assert status == 0 and "- 1 new items" in text, text
    assert on_orcid(sim, r.orcid, "education") == [] and len(on_orcid(sim, r.orcid, "employment")) == 2


def test_tasks_write_nothing_when_not_an_orcid_member(orcid_app, sim, monkeypatch):
    make_researchers(sim, settings_of(orcid_app), 1, 2)
    monkeypatch.setattr(settings_of(orcid_app), "ORCID_MEMBER", False)
    assert run_works(orcid_app)[0] == 0 and run_affiliations(orcid_app)[0] == 0
    assert sim.calls == []


def test_ignored_and_untitled_affiliations_are_not_sent(orcid_app, sim):
    [r] = make_researchers(sim, settings_of(orcid_app), 1, 0)
    person = read_record("local", f"person_{r.person_id}")
    first, second = person["local.personOrgRelation.id"]
    del first.children["local.person.title"]
    write_record("local", f"person_{r.person_id}", person, NOW)
    record_choices(r.orcid, "education", [], [f"local_person_{r.person_id}_{second.value}"], NOW)
    db.session.commit()
    status, text = run_affiliations(orcid_app)
    assert (
        status == 0
        and "- 1 skipped - no role-title items" in text
        and "- 1 skipped - ignored affiliation items" in text
    )
    assert sim.calls == []


def test_affiliation_task_script_dry_run(orcid_app, sim):
    make_researchers(sim, settings_of(orcid_app), 1, 0)
    db.session.remove()
    sim.clear_calls()
    script = ROOT / "tasks" / "sync_affiliations_to_orcid.py"
    done = subprocess.run(
        [sys.executable, str(script), "--dry-run"], env=task_env(orcid_app), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("DRY RUN: would add") == 2
    assert sim.calls == []
