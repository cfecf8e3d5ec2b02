import io
from datetime import date

import pytest
import sqlalchemy as sa

from ioi.extensions import db
from ioi.models import Message
from ioi.services.reports import last_run
from ioi.taskframe import parse_arguments, run_task, task_lock

OPTIONS = ("from_date", "handle", "orcid")


def messages():
    return db.session.execute(sa.select(Message.process, Message.type)).all()


def test_legacy_arguments_are_accepted():
    args = parse_arguments(["fromDate=2019-10-01", "handle=10754/12345", "--dry-run"], "harvestRepository", "", OPTIONS)
    assert (args.from_date, args.handle, args.dry_run) == (date(2019, 10, 1), "10754/12345", True)
    args = parse_arguments(["orcid=https://orcid.org/0000-0002-1825-0097"], "syncAffiliationsToORCID", "", OPTIONS)
    assert args.orcid == "0000-0002-1825-0097"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["fromDate=2019-13-01"], "not a date in the form YYYY-MM-DD"),
        (["--handle", "not a handle"], "not a repository handle"),
        (["orcid=0000-0002-1825-0098"], "not a valid ORCID iD"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(argv, "harvestRepository", "", OPTIONS)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_arguments_a_task_does_not_take_are_refused(capsys):
    with pytest.raises(SystemExit):
        parse_arguments(["orcid=0000-0002-1825-0097"], "harvestRepository", "", ("from_date", "handle"))
    assert "python tasks/harvest_repository.py" in capsys.readouterr().err


def test_a_run_saves_its_report_and_exits_0(app):
    def work(ctx):
        ctx.report.count("all", 2)
        ctx.report.count("new", 2)
        ctx.commit()

    out = io.StringIO()
    assert run_task("harvestRepository", "Harvest", work, [], app=app, out=out) == 0
    assert sorted(messages()) == [("harvestRepository", "report"), ("harvestRepository", "summary")]
    assert out.getvalue() == ""  # quiet when not on a terminal


def test_errors_give_exit_status_1_and_are_reported(app, capsys):
    def work(ctx):
        ctx.report.count("all", 1)
        ctx.report.error("10754/9: DSpace answered 500")

    assert run_task("harvestRepository", "Harvest", work, [], app=app, out=io.StringIO()) == 1
    assert "1 error(s)" in capsys.readouterr().err
    report = db.session.execute(sa.select(Message.message).where(Message.type == "report")).scalar_one()
    assert "DSpace answered 500" in report


def test_a_crashing_task_is_reported_not_lost(app):
    def work(ctx):
        ctx.report.count("all", 1)
        raise RuntimeError("boom")

    assert run_task("syncWorksToORCID", "Sync", work, [], app=app, out=io.StringIO()) == 1
    report = db.session.execute(sa.select(Message.message).where(Message.type == "report")).scalar_one()
    assert "task stopped: RuntimeError: boom" in report


def test_dry_run_writes_nothing_and_prints_the_report(app):
    def work(ctx):
        assert ctx.dry_run
        db.session.add(Message(process="probe", type="report", message="written by the task", timestamp=ctx.now))
        ctx.commit()
        ctx.would("add ORCID iD to 10754/1")
        ctx.report.count("new", 1)

    out = io.StringIO()
    assert run_task("updateORCIDiDsInDSpace", "Update", work, ["--dry-run"], app=app, out=out) == 0
    assert messages() == []
    assert last_run("updateORCIDiDsInDSpace") is None
    assert "DRY RUN: would add ORCID iD to 10754/1" in out.getvalue()
    assert "- 1 new items" in out.getvalue()


def test_an_overlapping_run_exits_at_once_with_status_0(app):
    called = []
    out = io.StringIO()
    with task_lock(app, "harvestRepository"):
        status = run_task("harvestRepository", "Harvest", called.append, [], app=app, out=out)
    assert status == 0 and called == []
    assert "harvestRepository is already running" in out.getvalue()
    assert messages() == []
    # once the first run is over, the next one runs
    assert run_task("harvestRepository", "Harvest", called.append, [], app=app, out=io.StringIO()) == 0
    assert len(called) == 1


def test_locks_are_per_task(app):
    called = []
    with task_lock(app, "harvestRepository"):
        assert run_task("syncWorksToORCID", "Sync", called.append, [], app=app, out=io.StringIO()) == 0
    assert len(called) == 1


def test_sqlite_locks_are_per_database(app, tmp_path):
    from conftest import make_app
    from flask_migrate import upgrade

    other = make_app(f"sqlite:///{tmp_path / 'other.sqlite'}")
    with other.app_context():
        upgrade()
    called = []
    with task_lock(app, "harvestRepository"):
        assert run_task("harvestRepository", "Harvest", called.append, [], app=other, out=io.StringIO()) == 0
    assert len(called) == 1


@pytest.mark.parametrize("process", ["harvestRepository", "updateORCIDiDsInDSpace", "syncAffiliationsToORCID"])
def test_help_names_the_real_script(process, capsys):
    from ioi.config import PROJECT_ROOT
    from ioi.taskframe import TASK_SCRIPTS

    with pytest.raises(SystemExit):
        parse_arguments(["--help"], process, "", OPTIONS)
    script = f"tasks/{TASK_SCRIPTS[process]}.py"
    assert f"python {script}" in capsys.readouterr().out
    assert (PROJECT_ROOT / script).exists()
