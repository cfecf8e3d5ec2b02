"""The harvestRepository task against the DSpace 5 and 6 simulators, over real HTTP, on the test database."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import TEST_SECRET, _reset_tables, make_app
from flask import Flask

from ioi.clients.dspace import DSpaceClient, RestItem
from ioi.clients.oai import OaiClient
from ioi.extensions import db
from ioi.models import Message, Metadata, SourceData
from ioi.sandbox.dspace import DSpaceSimulator, MetadataValue
from ioi.sandbox.repository_generator import generate_repository
from ioi.sandbox.server import BackgroundServer
from ioi.services import harvest
from ioi.services.harvest import harvest_repository, item_record, parse_dspace_timestamp, split_authority, stored_from
from ioi.services.metadata_store import read_record
from ioi.taskframe import run_task, task_lock

ROOT = Path(__file__).resolve().parent.parent
# Runs tasks/harvest_repository.py as cron does, with its lock file in the test's instance folder.
RUN_SCRIPT = """
import runpy, sys
import ioi
build, instance = ioi.create_app, sys.argv[1]
def create_app():
    app = build()
    app.instance_path = instance
    return app
ioi.create_app = create_app
sys.argv = ["tasks/harvest_repository.py"]
runpy.run_path("tasks/harvest_repository.py", run_name="__main__")
"""
ORCID = "0000-0002-1825-0097"
HOST = "repository.example.edu"


@dataclass
class Repo:
    """A simulator behind a server, and an app configured for it."""

    sim: DSpaceSimulator
    url: str
    app: Flask

    @property
    def version(self) -> int:
        return self.sim.version

    def client(self, **options) -> DSpaceClient:
        options = {"backoff": 0.01, "timeout": (2.0, 0.5), **options}
        return DSpaceClient(self.url + "/rest", "admin@example.edu", "admin", self.version, **options)

    def oai(self, **options) -> OaiClient:
        return OaiClient(self.url + "/oai/request", **{"backoff": 0.01, "timeout": (2.0, 1.0), **options})

    def harvest(self, *argv: str, out: io.StringIO | None = None, **client_options) -> int:
        """Run the task as cron would (lock, report), with fast-retrying clients."""
        work = partial(harvest_repository, client=self.client(**client_options), oai=self.oai())
        return self.run_task(harvest.PROCESS, work, argv, ("from_date", "handle"), out)

    def run_task(self, process: str, work, argv, options: tuple[str, ...], out: io.StringIO | None = None) -> int:
        """run_task in its own app context (as the script would); the test's session then sees its commits."""
        db.session.commit()
        try:
            return run_task(process, process, work, list(argv), options=options, app=self.app, out=out or io.StringIO())
        finally:
            db.session.rollback()


def repository_settings(url: str, version: int) -> dict:
    return {
        "DSPACE_VERSION": str(version),
        "REPOSITORY_BASE_URL": HOST,
        "REPOSITORY_URL": url,
        "REPOSITORY_USER": "admin@example.edu",
        "REPOSITORY_PW": "admin",
        "DSPACE_REQUEST_DELAY": 0,
    }


@pytest.fixture(scope="module")
def simulator():
    """One DSpace simulator server for the module; tests reset it."""
    sim = DSpaceSimulator()
    with BackgroundServer(sim) as server:
        yield sim, server.url


@pytest.fixture(scope="module")
def instance_dir(tmp_path_factory) -> Path:
    """Task lock files of this module's runs (not the shared instance/, where other test runs lock too)."""
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(params=[5, 6], ids=["dspace5", "dspace6"])
def repo(request, simulator, migrated, instance_dir):
    sim, url = simulator
    sim.reset(request.param, oai_page_size=10, oai_host=HOST)
    app = make_app(migrated, **repository_settings(url, request.param))
    app.instance_path = str(instance_dir)
    with app.app_context():
        _reset_tables()
        yield Repo(sim, url, app)
        db.session.remove()
        db.engine.dispose()


def seed_items(sim: DSpaceSimulator, n: int = 25, seed: int = 7) -> list[str]:
    """Generated items with old modification dates; returns their handles."""
    items = generate_repository(n, seed=seed, people=[("Babson, Jim", ORCID)])
    sim.load(items)
    return [item.handle for item in items]


def add_known_item(sim: DSpaceSimulator, handle: str = "10754/1") -> None:
    jim = sim.add_authority("Babson, Jim", ORCID)
    ann = sim.add_authority("Lee, Ann")
    sim.add_item(
        handle,
        [
            ("dc.title", "Corals of the Red Sea", "en_US"),
            MetadataValue("dc.contributor.author", "Babson, Jim", None, jim.key, 600),
            MetadataValue("dc.contributor.author", "Lee, Ann", "en_US", ann.key, 600),
            ("dc.contributor.author", "Plain, Pat"),
            ("dc.subject", "Corals", "en_US"),
            ("dc.description.provenance", "Made available in DSpace", "en"),
        ],
        last_modified=datetime(2019, 6, 10, 13, 30, 45, 280000, tzinfo=UTC),
    )


def live(field: str | None = None, id_in_source: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(Metadata).where(Metadata.deleted.is_(None))
    if field:
        query = query.where(Metadata.field == field)
    if id_in_source:
        query = query.where(Metadata.idInSource == id_in_source)
    return db.session.execute(query).scalar()


def summary() -> str:
    return (
        db.session.execute(
            sa.select(Message.message).where(Message.type == "summary").order_by(Message.messageID.desc())
        )
        .scalars()
        .first()
    )


def report() -> str:
    return (
        db.session.execute(
            sa.select(Message.message).where(Message.type == "report").order_by(Message.messageID.desc())
        )
        .scalars()
        .first()
    )


def handles_stored() -> set[str]:
    rows = db.session.execute(
        sa.select(SourceData.idInSource).where(SourceData.source == "dspace", SourceData.deleted.is_(None))
    )
    return set(rows.scalars())


def puts(sim: DSpaceSimulator) -> list:
    return [
        c for c in sim.calls() if c.method in ("PUT", "POST", "DELETE") and not c.path.endswith(("login", "logout"))
    ]


# ---------------------------------------------------------------- pure rules


def test_split_authority_takes_name_key_and_orcid():
    assert split_authority("Babson, Jim::e095211a::0000-0002-9315-2622") == (
        "Babson, Jim",
        "e095211a",
        "0000-0002-9315-2622",
    )
    assert split_authority("Lee, Ann::abc") == ("Lee, Ann", "abc", None)
    assert split_authority("Plain, Pat") == ("Plain, Pat", None, None)


def test_item_record_splits_authorities_only_in_orcid_fields_and_keeps_languages():
    item = RestItem(
        "4350",
        "10754/1",
        "2019-06-10 13:30:45.28",
        [
            {"key": "dc.contributor.author", "value": "Babson, Jim::k1::" + ORCID, "language": None},
            {"key": "dc.contributor.author", "value": "Lee, Ann::k2", "language": "en_US"},
            {"key": "dc.subject", "value": "a::b", "language": None},
        ],
        "{}",
    )
    record = item_record(item, ["dc.contributor.author"])
    jim, ann = record["dc.contributor.author"]
    assert jim.value == "Babson, Jim"
    assert jim.children["dspace.authority.key"][0].value == "k1"
    assert jim.children["dspace.authority.key"][0].children == {"dc.identifier.orcid": [ORCID]}
    assert ann.children["dspace.authority.key"][0].children == {}
    assert ann.children["dspace.metadata.language"] == ["en_US"]
    assert record["dc.subject"][0].value == "a::b"
    assert record["dspace.date.modified"] == ["2019-06-10 13:30:45.28"]
    assert record["dspace.internal.itemID"] == ["4350"]


def test_dspace_timestamps_are_read_in_each_form():
    utc = parse_dspace_timestamp("Fri Aug 27 13:42:16 UTC 2021")
    assert utc == datetime(2021, 8, 27, 13, 42, 16, tzinfo=UTC)
    assert parse_dspace_timestamp("2021-06-21T12:53:57.871+00:00") == datetime(2021, 6, 21, 12, 53, 57, 871000, UTC)
    local = parse_dspace_timestamp("2019-06-10 13:30:45.28")
    assert local.replace(tzinfo=None) == datetime(2019, 6, 10, 13, 30, 45, 280000) and local.tzinfo is not None
    assert parse_dspace_timestamp("yesterday") is None


# ---------------------------------------------------------------- harvesting


def test_a_full_harvest_stores_every_item_with_authority_splitting(repo):
    add_known_item(repo.sim)
    handles = seed_items(repo.sim, 24)
    assert repo.harvest() == 0
    assert handles_stored() == {"10754/1", *handles}
    assert "- 25 all items\n- 25 new items\n- 0 modified items" in summary()
    record = read_record("dspace", "10754/1")
    jim, ann, pat = record["dc.contributor.author"]
    assert (jim.value, ann.value, pat.value) == ("Babson, Jim", "Lee, Ann", "Plain, Pat")
    key = jim.children["dspace.authority.key"][0]
    assert key.children["dc.identifier.orcid"][0].value == ORCID
    assert "dc.identifier.orcid" not in ann.children["dspace.authority.key"][0].children
    assert ann.children["dspace.metadata.language"][0].value == "en_US"
    assert pat.children == {}
    assert record["dspace.date.modified"][0].value == "2019-06-10 13:30:45.28"
    item = repo.sim.item("10754/1")
    assert record["dspace.internal.itemID"][0].value == (str(item.id) if repo.version == 5 else item.uuid)
    assert record["dc.description.provenance"][0].value == "Made available in DSpace"  # read as an admin
    assert stored_from() is not None
    assert puts(repo.sim) == []


def test_an_unchanged_reharvest_writes_nothing_and_changes_are_picked_up_incrementally(repo):
    handles = seed_items(repo.sim, 12)
    assert repo.harvest() == 0
    rows = db.session.execute(sa.select(sa.func.count()).select_from(Metadata)).scalar()
    assert repo.harvest("--from-date", "2000-01-01") == 0
    assert "- 12 all items\n- 0 new items\n- 0 modified items\n- 0 deleted items\n- 0 skipped items" in summary()
    assert "- 12 unchanged items" in summary()
    assert db.session.execute(sa.select(sa.func.count()).select_from(Metadata)).scalar() == rows
    # an editor changes one item: the next regular run lists only that one
    repo.sim.set_values(handles[3], "dc.title", ["A better title"])
    assert repo.harvest() == 0
    assert "- 1 all items\n- 0 new items\n- 1 modified items" in summary()
    assert read_record("dspace", handles[3])["dc.title"][0].value == "A better title"
    history = db.session.execute(
        sa.select(Metadata.value).where(Metadata.idInSource == handles[3], Metadata.field == "dc.title")
    ).scalars()
    assert len(list(history)) == 2  # the old title is kept, marked deleted
    assert repo.harvest() == 0  # lists at most what changed within the last listing's second again
    assert "- 0 new items\n- 0 modified items" in summary()


def test_deleted_and_withdrawn_items_are_retired(repo):
    handles = seed_items(repo.sim, 6)
    assert repo.harvest() == 0
    repo.sim.withdraw_item(handles[0])
    repo.sim.delete_item(handles[1])
    assert repo.harvest() == 0
    assert "- 2 all items\n- 0 new items\n- 0 modified items\n- 2 deleted items" in summary()
    assert live(id_in_source=handles[0]) == 0 and live(id_in_source=handles[1]) == 0
    assert handles_stored() == set(handles[2:])
    repo.sim.reinstate_item(handles[0])
    assert repo.harvest() == 0
    assert handles[0] in handles_stored()


def test_a_single_handle_is_harvested_alone(repo):
    handles = seed_items(repo.sim, 5)
    assert repo.harvest("handle=" + handles[2]) == 0
    assert handles_stored() == {handles[2]}
    assert stored_from() is None  # a single item does not move the resume point
    assert any("verb=GetRecord" in c.query for c in repo.sim.calls())
    repo.sim.withdraw_item(handles[2])
    assert repo.harvest("--handle", handles[2]) == 0
    assert handles_stored() == set()


def test_a_handle_unknown_to_dspace_is_an_error(repo):
    assert repo.harvest("--handle", "10754/999") == 1
    assert "10754/999" in report()


def test_from_date_lists_items_changed_since_that_day(repo):
    seed_items(repo.sim, 8)
    repo.sim.add_item("10754/77", [("dc.title", "Recent")], last_modified=datetime(2025, 3, 2, tzinfo=UTC))
    assert repo.harvest("fromDate=2025-03-01") == 0
    assert handles_stored() == {"10754/77"}
    assert any("from=2025-03-01T00%3A00%3A00Z" in c.query for c in repo.sim.calls())


def test_a_legacy_database_resumes_from_the_newest_modification_plus_one_second(repo):
    repo.sim.add_item("10754/5", [("dc.title", "Old")], last_modified=datetime(2019, 6, 10, 13, 30, 45, tzinfo=UTC))
    repo.sim.add_item("10754/6", [("dc.title", "New")], last_modified=datetime(2019, 6, 10, 13, 30, 47, tzinfo=UTC))
    # what the PHP IOI left: 10754/5 harvested, no resume point
    db.session.add(Metadata(source="dspace", idInSource="10754/5", field="dspace.date.modified", place=1,
                            value="2019-06-10 13:30:45.9", added=datetime(2019, 6, 10)))  # fmt: skip
    db.session.commit()
    expected = harvest.next_second(parse_dspace_timestamp("2019-06-10 13:30:45.9"))
    assert repo.harvest() == 0
    listed = [c.query for c in repo.sim.calls() if "ListIdentifiers" in c.query]
    assert listed == ["verb=ListIdentifiers&metadataPrefix=xoai&from=" + expected.replace(":", "%3A")]
    assert handles_stored() == {"10754/6"}


def test_dry_run_prints_what_would_change_and_writes_nothing(repo):
    handles = seed_items(repo.sim, 5)
    out = io.StringIO()
    assert repo.harvest("--dry-run", out=out) == 0
    assert f"DRY RUN: would add {handles[0]}" in out.getvalue()
    assert db.session.execute(sa.select(sa.func.count()).select_from(Metadata)).scalar() == 0
    assert db.session.execute(sa.select(sa.func.count()).select_from(SourceData)).scalar() == 0
    assert db.session.execute(sa.select(sa.func.count()).select_from(Message)).scalar() == 0
    assert puts(repo.sim) == []


def test_a_second_run_while_one_holds_the_lock_exits_0_at_once(repo):
    seed_items(repo.sim, 3)
    out = io.StringIO()
    with task_lock(repo.app, harvest.PROCESS):
        started = time.monotonic()
        assert repo.harvest(out=out) == 0
        assert time.monotonic() - started < 2
    assert "already running" in out.getvalue()
    assert handles_stored() == set()
    assert not any("ListIdentifiers" in c.query for c in repo.sim.calls())


def test_two_runs_started_together_harvest_once(repo):
    seed_items(repo.sim, 30)
    repo.sim.set_latency(0.01, path="/rest/handle")
    outs = [io.StringIO(), io.StringIO()]
    statuses = []

    def run(out):
        with repo.app.app_context():
            statuses.append(repo.harvest(out=out))
            db.session.remove()

    threads = [threading.Thread(target=run, args=(out,)) for out in outs]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    repo.sim.clear_faults()
    assert statuses == [0, 0]
    assert sum("already running" in out.getvalue() for out in outs) == 1
    assert len(handles_stored()) == 30


def test_batches_are_written_two_at_once_on_a_server_database_and_in_order_on_sqlite(repo):
    """On MariaDB/MySQL two writer threads, each on its own connection; SQLite has one writer at a time."""
    handles = seed_items(repo.sim, 40)
    writers: set[tuple[str, int]] = set()

    def on_execute(conn, cursor, statement, parameters, *args):
        if statement.startswith("INSERT INTO metadata") and "'dspace'" in repr(parameters):  # items, not run state
            writers.add((threading.current_thread().name, id(conn.connection.dbapi_connection)))

    work = partial(harvest_repository, client=repo.client(), oai=repo.oai(), batch_size=5, writers=2)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", on_execute)
    try:
        assert repo.run_task(harvest.PROCESS, work, [], ("from_date",)) == 0
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", on_execute)
    assert handles_stored() == set(handles)
    assert "- 40 all items\n- 40 new items" in summary()
    threads = {name for name, _ in writers}
    if db.engine.dialect.name == "sqlite":
        assert threads == {threading.current_thread().name}
    else:
        assert len(threads) == 2 and all(name.startswith("harvest-writer") for name in threads)
        assert len({connection for _, connection in writers}) >= 2


def test_an_item_listed_twice_is_not_written_twice_at_once(repo, monkeypatch):
    """Two batches written at once must not both insert the same new item (its rows would be doubled)."""
    handles = seed_items(repo.sim, 20)
    write_batch = harvest.write_batch

    def slow_to_commit(*args):  # the first batch commits late, after the second has read what is stored
        statuses = write_batch(*args)
        if len(twice) == 1:
            twice.append("written")
            time.sleep(0.5)
        return statuses

    monkeypatch.setattr(harvest, "write_batch", slow_to_commit)
    oai = repo.oai()
    list_identifiers = oai.list_identifiers

    twice = []

    def listed_twice(*args):
        for page in list_identifiers(*args):
            if not twice:  # the end of the first batch again at the start of the second
                twice.append(page.headers[4].handle)
                page.headers.insert(5, page.headers[4])
            yield page

    oai.list_identifiers = listed_twice
    work = partial(harvest_repository, client=repo.client(), oai=oai, batch_size=5, writers=2)
    assert repo.run_task(harvest.PROCESS, work, [], ("from_date",)) == 0
    assert handles_stored() == set(handles)
    doubled = db.session.execute(
        sa.select(Metadata.idInSource, Metadata.parentRowID, Metadata.field, Metadata.place)
        .where(Metadata.deleted.is_(None), Metadata.source == "dspace")
        .group_by(Metadata.idInSource, Metadata.parentRowID, Metadata.field, Metadata.place)
        .having(sa.func.count() > 1)
    ).all()
    assert doubled == []
    counts = "- 21 all items\n- 20 new items\n- 0 modified items\n- 0 deleted items\n- 0 skipped items\n- 1 unchanged"
    assert counts in summary()  # the second listing found the first one's version stored
    versions = db.session.execute(sa.select(SourceData.deleted).where(SourceData.idInSource == twice[0])).all()
    assert [v.deleted for v in versions] == [None]


def test_a_batch_that_cannot_be_written_stops_the_run_and_the_next_run_writes_it(repo, monkeypatch):
    handles = seed_items(repo.sim, 30)
    write_batch = harvest.write_batch

    def failing_once(retired, items, *args):
        if any(item.handle == handles[12] for item in items) and not failing_once.failed:
            failing_once.failed = True
            raise sa.exc.OperationalError("INSERT INTO metadata ...", {}, Exception("Lost connection to server"))
        return write_batch(retired, items, *args)

    failing_once.failed = False
    monkeypatch.setattr(harvest, "write_batch", failing_once)
    work = partial(harvest_repository, client=repo.client(), oai=repo.oai(), batch_size=5)
    assert repo.run_task(harvest.PROCESS, work, [], ("from_date",)) == 1
    assert "Lost connection to server" in report()
    stored = handles_stored()
    assert handles[12] not in stored and len(stored) >= 5  # other batches committed
    assert stored_from() == ""  # the first listing did not complete: the next run lists everything again
    assert repo.run_task(harvest.PROCESS, work, [], ("from_date",)) == 0
    assert handles_stored() == set(handles)
    assert live(id_in_source=handles[12]) > 0


# ---------------------------------------------------------------- faults


def test_server_errors_are_retried(repo):
    handles = seed_items(repo.sim, 6)
    repo.sim.fail_next(2, 500, path="/rest/handle")
    repo.sim.fail_next(1, 503, path="verb=ListIdentifiers")
    assert repo.harvest() == 0
    assert handles_stored() == set(handles)


def test_timeouts_and_cut_answers_are_retried(repo):
    handles = seed_items(repo.sim, 6)
    repo.sim.timeout_next(1, seconds=1.0, path="/rest/handle")
    repo.sim.truncate_next(1, path="/rest/handle")
    repo.sim.truncate_next(1, path="resumptionToken")
    assert repo.harvest() == 0
    assert handles_stored() == set(handles)


def test_an_item_that_keeps_failing_is_reported_and_retried_by_the_next_run(repo):
    handles = seed_items(repo.sim, 15)
    bad = handles[4]
    repo.sim.fail_next(4, 500, path="/rest/handle/" + bad)
    assert repo.harvest() == 1
    assert bad in report() and "- 1 skipped items" in summary()
    assert handles_stored() == set(handles) - {bad}
    # the resume point did not move past the failed item: the next run gets it
    assert repo.harvest() == 0
    assert handles_stored() == set(handles)


def test_repeated_failures_stop_the_run_and_the_next_run_resumes(repo):
    handles = seed_items(repo.sim, 40)
    first_from = None
    repo.sim.fail_next(60, 500, path="/rest/handle")
    assert repo.harvest(max_attempts=1) == 1
    text = report()
    assert "harvest stopped" in text and "5 items in a row" in text
    first_from = stored_from()
    assert len(handles_stored()) < 40
    repo.sim.clear_faults()
    assert repo.harvest() == 0
    assert handles_stored() == set(handles)
    assert stored_from() != first_from


def test_a_bad_resumption_token_stops_the_listing_and_the_next_run_starts_over(repo):
    handles = seed_items(repo.sim, 25)
    repo.sim.fail_next(10, 200, path="resumptionToken")  # HTML instead of OAI XML, every attempt
    assert repo.harvest() == 1
    assert "OAI-PMH listing stopped" in report()
    assert len(handles_stored()) == 10  # the first page was kept
    repo.sim.clear_faults()
    assert repo.harvest() == 0
    assert handles_stored() == set(handles)
    assert "- 25 all items\n- 15 new items" in summary()


def test_oai_errors_in_the_answer_are_typed(repo):
    seed_items(repo.sim, 25)
    oai = repo.oai()
    from ioi.clients.oai import OaiBadResumptionToken

    with pytest.raises(OaiBadResumptionToken):
        oai.list_identifiers_page(token="not-a-token")
    assert oai.list_identifiers_page(from_date="2099-01-01").headers == []  # noRecordsMatch


def test_wrong_credentials_are_reported(repo):
    seed_items(repo.sim, 2)
    work = partial(
        harvest_repository,
        client=DSpaceClient(repo.url + "/rest", "admin@example.edu", "wrong", repo.version, backoff=0.01),
        oai=repo.oai(),
    )
    assert repo.run_task(harvest.PROCESS, work, [], ("from_date", "handle")) == 1
    assert "login refused" in report() and "wrong" not in report()


# ---------------------------------------------------------------- the script


def test_the_script_has_help_and_refuses_bad_arguments():
    script = [sys.executable, "tasks/harvest_repository.py"]
    shown = subprocess.run([*script, "--help"], cwd=ROOT, capture_output=True)
    assert shown.returncode == 0 and b"Harvest the DSpace repository" in shown.stdout
    assert subprocess.run([*script, "fromDate=2019-13-40"], cwd=ROOT, capture_output=True).returncode == 2


def test_a_run_killed_mid_way_is_completed_by_the_next_run(repo, migrated):
    handles = seed_items(repo.sim, 120)
    repo.sim.set_latency(0.1, path="/rest/handle")
    env = {
        **os.environ,
        **{k: str(v) for k, v in repository_settings(repo.url, repo.version).items()},
        "DATABASE_URL": migrated,
        "SECRET_KEY": TEST_SECRET,
    }
    process = subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, repo.app.instance_path], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not handles_stored():
            db.session.rollback()
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(10)
    db.session.rollback()
    repo.sim.clear_faults()
    done = handles_stored()
    assert 0 < len(done) < 120  # killed after its first batch
    assert db.session.execute(sa.select(Message)).first() is None  # the killed run saved no report
    assert repo.harvest() == 0
    assert handles_stored() == set(handles)
    assert f"- 120 all items\n- {120 - len(done)} new items" in summary()
    assert repo.harvest() == 0
    assert "- 0 new items\n- 0 modified items" in summary()


def test_the_task_script_main_runs_with_its_own_clients(repo, monkeypatch):
    seed_items(repo.sim, 3)
    sys.path.insert(0, str(ROOT / "tasks"))
    try:
        import harvest_repository as script
    finally:
        sys.path.remove(str(ROOT / "tasks"))
    import ioi

    monkeypatch.setattr(ioi, "create_app", lambda: repo.app)
    assert script.main([]) == 0
    assert len(handles_stored()) == 3
    assert date.today().year >= 2024
