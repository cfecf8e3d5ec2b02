# ruff: noqa: F811 - pytest fixtures imported from test_harvest are used as arguments
"""updateORCIDiDsInDSpace against the DSpace 5 and 6 simulators: add/remove iDs, other metadata intact."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta
from functools import partial

import sqlalchemy as sa
from test_harvest import ORCID, ROOT, instance_dir, puts, repo, report, simulator, summary  # noqa: F401 - fixtures

from ioi.extensions import db
from ioi.models import Metadata, Orcid, SourceData, UserSelection
from ioi.sandbox.dspace import MetadataValue
from ioi.services import dspace_writeback
from ioi.services.dspace_writeback import Person, plan_change, update_orcid_ids_in_dspace
from ioi.services.metadata_store import read_record, write_record
from ioi.services.selections import record_choices
from ioi.taskframe import task_lock
from ioi.timeutil import now

HANDLE = "10754/1"
WORK = "repository_10754/1"
FIELDS = ["dc.contributor.author", "dc.contributor.advisor", "dc.contributor.committeemember"]


def seed(repo, jim_orcid: str | None = None) -> None:
    """An item by Jim (plain authority, or ORCID-linked), Ann and Pat, harvested; Jim is a local person with an iD."""
    jim = repo.sim.add_authority("Babson, Jim", jim_orcid)
    ann = repo.sim.add_authority("Lee, Ann", "0000-0001-5109-3700")
    repo.sim.add_item(
        HANDLE,
        [
            ("dc.title", "Corals of the Red Sea", "en_US"),
            MetadataValue("dc.contributor.author", "Lee, Ann", None, ann.key, 600),
            MetadataValue("dc.contributor.author", "Babson, Jim", "en_US", jim.key, 600),
            ("dc.contributor.author", "Plain, Pat"),
            ("dc.subject", "Corals", "en_US"),
            ("dc.subject", "Reefs", "en_US"),
            ("dc.description.provenance", "Submitted by Repository Admin", "en"),
            ("dc.description.provenance", "Made available in DSpace", "en"),
        ],
        last_modified=datetime(2020, 1, 1, tzinfo=UTC),
    )
    assert repo.harvest() == 0
    write_record("local", "person_7", {"local.person.id": ["7"], "local.person.name": ["Babson, Jim"]}, now())
    db.session.add(Orcid(email="jim@example.edu", orcid=ORCID, name="Jim Babson", localPersonID=7))
    db.session.commit()
    repo.sim.clear_calls()


def choose(selected: list[str] = (), ignored: list[str] = (), when: datetime | None = None) -> None:
    record_choices(ORCID, "work", selected, ignored, when or now())
    db.session.commit()


def write_back(repo, *argv: str, out: io.StringIO | None = None) -> int:
    work = partial(update_orcid_ids_in_dspace, client=repo.client())
    return repo.run_task(dspace_writeback.PROCESS, work, argv, (), out)


def stored_item(repo):
    return repo.sim.item(HANDLE)


def authors(repo) -> list[tuple[str, str | None]]:
    """(name, ORCID iD of its authority) of each author value in DSpace."""
    index = repo.sim.authorities()
    values = [v for v in stored_item(repo).metadata if v.key == "dc.contributor.author"]
    return [(v.value, index[v.authority].orcid if v.authority else None) for v in values]


def other_values(repo) -> list[tuple[str, str, str | None]]:
    return [(v.key, v.value, v.language) for v in stored_item(repo).metadata if v.key != "dc.contributor.author"]


def test_plan_sends_only_the_changed_keys_with_all_their_values_in_order():
    metadata = [
        {"key": "dc.title", "value": "T", "language": None},
        {"key": "dc.contributor.author", "value": "Lee, Ann::k1::0000-0001-5109-3700", "language": None},
        {"key": "dc.contributor.author", "value": "Babson, Jim::k2", "language": "en_US"},
        {"key": "dc.description.provenance", "value": "old", "language": "en"},
    ]
    person = Person(ORCID, "Babson, Jim", ("Babson, Jim",))
    plan = plan_change(metadata, FIELDS, person, True, "new")
    assert plan.outcome == "added"
    assert plan.entries == [
        {"key": "dc.contributor.author", "value": "Lee, Ann::k1::0000-0001-5109-3700", "language": None},
        {"key": "dc.contributor.author", "value": f"Babson, Jim::{ORCID}", "language": "en_US"},
        {"key": "dc.description.provenance", "value": "old", "language": "en"},
        {"key": "dc.description.provenance", "value": "new", "language": "en"},
    ]
    # matched by authority key even when the name differs; another person's iD is never touched
    keyed = Person(ORCID, "Babson, James", ("Babson, James",), frozenset({"k2"}))
    assert plan_change(metadata, FIELDS, keyed, True, "new").entries[1]["value"] == f"Babson, Jim::{ORCID}"
    assert plan_change(metadata, FIELDS, Person(ORCID, "Nobody, N", ("Nobody, N",)), True, "x").outcome == "not found"
    other = Person(ORCID, "Lee, Ann", ("Lee, Ann",))
    assert plan_change(metadata, FIELDS, other, True, "x").outcome == "other iD"
    assert plan_change(metadata, FIELDS, person, False, "x").outcome == "unchanged"


def test_a_selected_work_gets_the_orcid_id_and_keeps_every_other_value(repo):
    seed(repo)
    before = other_values(repo)
    choose(selected=[WORK])
    assert write_back(repo) == 0
    assert authors(repo) == [("Lee, Ann", "0000-0001-5109-3700"), ("Babson, Jim", ORCID), ("Plain, Pat", None)]
    after = other_values(repo)
    assert after[: len(before)] == before  # nothing dropped, nothing duplicated, order kept
    assert len(after) == len(before) + 1
    key, text, language = after[-1]
    assert key == "dc.description.provenance" and language == "en"
    assert "ORCID iD added to Babson, Jim" in text and "repository@example.edu" in text
    jim = [v for v in stored_item(repo).metadata if v.value == "Babson, Jim"][0]
    assert jim.language == "en_US"
    assert len([c for c in puts(repo.sim) if c.method == "PUT"]) == 1
    assert "- 1 marked as new items\n- 1 ORCID iD added items" in summary()
    # re-harvested: IOI's copy now links the author to the iD
    stored = read_record("dspace", HANDLE)["dc.contributor.author"][1]
    assert stored.children["dspace.authority.key"][0].children["dc.identifier.orcid"][0].value == ORCID
    # the next run has nothing new to do
    repo.sim.clear_calls()
    assert write_back(repo) == 0
    assert puts(repo.sim) == []


def test_an_ignored_work_loses_the_orcid_id(repo):
    seed(repo, jim_orcid=ORCID)
    choose(ignored=[WORK])
    assert write_back(repo) == 0
    assert authors(repo) == [("Lee, Ann", "0000-0001-5109-3700"), ("Babson, Jim", None), ("Plain, Pat", None)]
    assert "ORCID iD removed by Babson, Jim" in repo.sim.values(HANDLE, "dc.description.provenance")[-1]
    assert repo.sim.values(HANDLE, "dc.subject") == ["Corals", "Reefs"]
    assert "- 1 marked as ignored items\n- 1 ORCID iD removed items" in summary()
    stored = read_record("dspace", HANDLE)["dc.contributor.author"][1]
    assert "dc.identifier.orcid" not in stored.children["dspace.authority.key"][0].children


def test_a_work_that_already_carries_the_id_is_unchanged(repo):
    seed(repo, jim_orcid=ORCID)
    choose(selected=[WORK])
    assert write_back(repo) == 0
    assert puts(repo.sim) == []
    assert "- 1 unchanged items" in summary()


def test_a_work_without_the_persons_name_is_skipped(repo):
    seed(repo)
    db.session.execute(sa.update(Orcid).values(name="Someone Else"))
    write_record("local", "person_7", {"local.person.id": ["7"], "local.person.name": ["Else, Someone"]}, now())
    db.session.commit()
    choose(selected=[WORK])
    assert write_back(repo) == 0
    assert puts(repo.sim) == []
    assert "- 1 skipped items" in summary() and "no author value matches" in report()


def test_dry_run_writes_nothing_anywhere(repo):
    seed(repo)
    choose(selected=[WORK])
    tables = (Metadata, SourceData, UserSelection)
    counts = [db.session.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in tables]
    out = io.StringIO()
    assert write_back(repo, "--dry-run", out=out) == 0
    assert f"DRY RUN: would add {ORCID} on {HANDLE}: dc.contributor.author[2]" in out.getvalue()
    assert puts(repo.sim) == []
    assert authors(repo)[1] == ("Babson, Jim", None)
    assert [db.session.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in tables] == counts
    assert summary() is None or "ORCID iD added" not in (summary() or "")


def test_a_lost_session_is_renewed_and_the_item_read_again(repo):
    from ioi.clients.dspace import DSpaceClient

    seed(repo)
    choose(selected=[WORK])

    class ForgottenClient(DSpaceClient):
        """DSpace restarts just before the first read: that read is anonymous (provenance hidden)."""

        forgotten = False

        def get_item_by_handle(self, handle):
            if not self.forgotten:
                self.forgotten = True
                repo.sim.invalidate_sessions()
            return super().get_item_by_handle(handle)

    client = ForgottenClient(repo.url + "/rest", "admin@example.edu", "admin", repo.version, backoff=0.01)
    work = partial(update_orcid_ids_in_dspace, client=client)
    assert repo.run_task(dspace_writeback.PROCESS, work, [], ()) == 0
    assert [c.status for c in puts(repo.sim) if c.method == "PUT"] == [401, 200]
    provenance = repo.sim.values(HANDLE, "dc.description.provenance")
    assert provenance[:2] == ["Submitted by Repository Admin", "Made available in DSpace"] and len(provenance) == 3


def test_failures_are_reported_and_retried_by_the_next_run(repo):
    seed(repo)
    choose(selected=[WORK], when=now() - timedelta(minutes=5))
    repo.sim.fail_next(20, 500, method="PUT")
    assert write_back(repo) == 1
    assert HANDLE in report() and authors(repo)[1] == ("Babson, Jim", None)
    repo.sim.clear_faults()
    assert write_back(repo) == 0
    assert authors(repo)[1] == ("Babson, Jim", ORCID)


def test_a_run_while_another_holds_the_lock_exits_0_at_once(repo):
    seed(repo)
    choose(selected=[WORK])
    out = io.StringIO()
    with task_lock(repo.app, dspace_writeback.PROCESS):
        assert write_back(repo, out=out) == 0
    assert "already running" in out.getvalue() and puts(repo.sim) == []


def test_a_work_no_longer_in_the_repository_is_skipped_without_calling_dspace(repo):
    seed(repo)
    repo.sim.withdraw_item(HANDLE)
    assert repo.harvest() == 0
    repo.sim.clear_calls()
    choose(selected=[WORK])
    assert write_back(repo) == 0
    assert not [c for c in repo.sim.calls() if c.path.startswith(("/rest/handle", "/rest/items"))]
    assert "- 1 skipped items" in summary() and "not in the harvested repository" in report()


def test_the_task_script_main_runs_the_write_back(repo, monkeypatch):
    import ioi

    seed(repo)
    choose(selected=[WORK])
    sys.path.insert(0, str(ROOT / "tasks"))
    try:
        import update_orcid_ids_in_dspace as script
    finally:
        sys.path.remove(str(ROOT / "tasks"))
    monkeypatch.setattr(ioi, "create_app", lambda: repo.app)
    db.session.commit()
    assert script.main([]) == 0
    db.session.rollback()
    assert authors(repo)[1] == ("Babson, Jim", ORCID)


def test_a_first_run_that_crashes_leaves_its_choices_to_the_next_run(repo, monkeypatch):
    seed(repo)
    choose(selected=[WORK], when=now() - timedelta(minutes=5))
    update_item = dspace_writeback.update_item

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(dspace_writeback, "update_item", crash)
    assert write_back(repo) == 1
    assert "disk full" in report()
    monkeypatch.setattr(dspace_writeback, "update_item", update_item)
    assert write_back(repo) == 0
    assert authors(repo)[1] == ("Babson, Jim", ORCID)


def test_a_refused_login_is_reported_and_the_choices_kept_for_the_next_run(repo):
    from ioi.clients.dspace import DSpaceClient

    seed(repo)
    choose(selected=[WORK], when=now() - timedelta(minutes=5))  # made well before the failed run's report
    client = DSpaceClient(repo.url + "/rest", "admin@example.edu", "wrong", repo.version, backoff=0.01)
    work = partial(update_orcid_ids_in_dspace, client=client)
    assert repo.run_task(dspace_writeback.PROCESS, work, [], ()) == 1
    assert "login refused" in report() and "wrong" not in report()
    assert write_back(repo) == 0
    assert authors(repo)[1] == ("Babson, Jim", ORCID)
