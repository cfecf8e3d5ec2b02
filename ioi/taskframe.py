"""What every cron task shares: arguments, lock, dry run, progress, report and exit status.

A task script builds nothing itself: it calls `run_task` with its process name and the service
function doing the work. The service receives a `TaskContext` and commits once per unit of work
through `ctx.commit()`.

- Arguments: `--from-date`, `--handle`, `--orcid` (as the task allows), and the PHP IOI's forms
  `fromDate=YYYY-MM-DD`, `handle=…`, `orcid=…`, so existing cron lines keep working.
- `--dry-run`: the work runs but every database change is rolled back at the end, services make
  no outside writes (they check `ctx.dry_run`), no report is saved or mailed; the report is printed.
- Lock: one run per task at a time; an overlapping run prints a message and exits 0. MySQL/MariaDB
  use a named server lock (so it holds across hosts and is freed if the process dies); SQLite a
  lock file under instance/.
- Output: progress and the summary on a terminal; under cron only errors, so cron mail means trouble.
- Exit status: 0 done, 1 errors occurred, 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from flask import Flask
from sqlalchemy import text

from ioi.config import ConfigError, Settings
from ioi.extensions import db
from ioi.orcid_ids import normalize_orcid
from ioi.services.reports import TaskReport, finish_report
from ioi.timeutil import now as local_now

LEGACY_ARGUMENT = re.compile(r"^(fromDate|handle|orcid)=(.*)$")
LEGACY_NAMES = {"fromDate": "--from-date", "handle": "--handle", "orcid": "--orcid"}
HANDLE = re.compile(r"^\d+(\.\d+)*/[\w.\-]+$")


class TaskLocked(RuntimeError):
    """Another run of the same task holds the lock."""


@dataclass
class TaskContext:
    """What a task's service gets: settings, arguments, the report, the clock and output helpers."""

    settings: Settings
    report: TaskReport
    now: datetime
    dry_run: bool = False
    from_date: date | None = None
    handle: str | None = None
    orcid: str | None = None
    interactive: bool = False
    out: TextIO = field(default=sys.stdout)

    def commit(self) -> None:
        """End a unit of work: commit, or in a dry run only flush (rolled back at the end)."""
        if self.dry_run:
            db.session.flush()
        else:
            db.session.commit()

    def progress(self, done: int, total: int | None = None) -> None:
        """Show progress on a terminal; silent under cron."""
        if self.interactive:
            of = f"/{total}" if total is not None else ""
            print(f"\r{self.report.process}: {done}{of}", end="", file=self.out, flush=True)

    def would(self, line: str) -> None:
        """Record a change a dry run would have made."""
        self.report.log(f"DRY RUN: would {line}")

    def note(self, would: str, done: str) -> None:
        """Log a change: what a dry run would do, or what was done."""
        if self.dry_run:
            self.would(would)
        else:
            self.report.log(done)


def parse_arguments(argv: list[str], process: str, description: str, options: tuple[str, ...]) -> argparse.Namespace:
    """Parse task arguments, accepting the PHP IOI's `name=value` forms too; exits 2 on bad input."""
    parser = argparse.ArgumentParser(prog=f"python tasks/{_script_name(process)}.py", description=description)
    parser.add_argument("--dry-run", action="store_true", help="show what would change; write nothing anywhere")
    if "from_date" in options:
        parser.add_argument("--from-date", type=_date, metavar="YYYY-MM-DD", help="only records changed since")
    if "handle" in options:
        parser.add_argument("--handle", type=_handle, metavar="PREFIX/SUFFIX", help="only this repository item")
    if "orcid" in options:
        parser.add_argument("--orcid", type=_orcid, metavar="0000-0000-0000-0000", help="only this ORCID iD")
    translated = []
    for argument in argv:
        match = LEGACY_ARGUMENT.match(argument)
        if match and LEGACY_NAMES[match.group(1)].lstrip("-").replace("-", "_") in options:
            translated += [LEGACY_NAMES[match.group(1)], match.group(2)]
        else:
            translated.append(argument)
    return parser.parse_args(translated)


# The PHP IOI's process names (kept in `messages`) and the port's script names.
TASK_SCRIPTS = {
    "harvestRepository": "harvest_repository",
    "syncWorksToORCID": "sync_works_to_orcid",
    "updateORCIDiDsInDSpace": "update_orcid_ids_in_dspace",
    "syncAffiliationsToORCID": "sync_affiliations_to_orcid",
}


def _script_name(process: str) -> str:
    return TASK_SCRIPTS.get(process, process)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date in the form YYYY-MM-DD: {value!r}") from None


def _handle(value: str) -> str:
    if not HANDLE.match(value):
        raise argparse.ArgumentTypeError(f"not a repository handle such as 10754/123456: {value!r}")
    return value


def _orcid(value: str) -> str:
    normalized = normalize_orcid(value)
    if normalized is None:
        raise argparse.ArgumentTypeError(f"not a valid ORCID iD: {value!r}")
    return normalized


@contextmanager
def task_lock(app: Flask, process: str) -> Iterator[None]:
    """Hold the task's lock for the duration of the block; raise TaskLocked if it is taken."""
    engine = db.engine
    if engine.dialect.name in ("mysql", "mariadb"):
        name = f"ioi:{engine.url.database}:{process}"
        with engine.connect() as conn:
            if conn.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": name}).scalar() != 1:
                raise TaskLocked(process)
            try:
                yield
            finally:
                conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        return
    lock_dir = Path(app.instance_path)
    lock_dir.mkdir(parents=True, exist_ok=True)
    # One lock per database and task: the demo and a test run on other databases never block each other.
    database = hashlib.sha256(str(engine.url).encode()).hexdigest()[:12]
    with open(lock_dir / f"{process}-{database}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TaskLocked(process) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_task(
    process: str,
    description: str,
    work: Callable[[TaskContext], None],
    argv: list[str] | None = None,
    options: tuple[str, ...] = (),
    app: Flask | None = None,
    out: TextIO | None = None,
) -> int:
    """Run one task from the command line; returns the exit status."""
    out = out or sys.stdout
    args = parse_arguments(sys.argv[1:] if argv is None else argv, process, description, options)
    if app is None:
        from ioi import create_app

        try:
            app = create_app()
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
    from ioi import settings_of

    with app.app_context():
        report = TaskReport(process)
        ctx = TaskContext(
            settings=settings_of(app),
            report=report,
            now=local_now(),
            dry_run=args.dry_run,
            from_date=getattr(args, "from_date", None),
            handle=getattr(args, "handle", None),
            orcid=getattr(args, "orcid", None),
            interactive=out.isatty(),
            out=out,
        )
        try:
            with task_lock(app, process):
                _run(work, ctx)
        except TaskLocked:
            print(f"{process} is already running; this run stops here.", file=out)
            return 0
        if ctx.interactive:
            print(file=out)
        if ctx.dry_run:
            print(report.full_text(), file=out)
        else:
            finish_report(report, ctx.settings, local_now())
            if ctx.interactive:
                print(report.summary(), file=out)
        if report.errors:
            print(f"{process}: {report.errors} error(s); see the report in the admin area.", file=sys.stderr)
            return 1
        return 0


def _run(work: Callable[[TaskContext], None], ctx: TaskContext) -> None:
    try:
        work(ctx)
    except Exception as exc:  # a crash is reported like any error, with what was done so far
        db.session.rollback()
        ctx.report.error(f"task stopped: {type(exc).__name__}: {exc}")
    finally:
        if ctx.dry_run:
            db.session.rollback()
