"""Task reports: counters and a log, saved to `messages` and emailed to IR_EMAIL.

A report is saved as two `messages` rows under the task's process name, `report` (the full log)
and `summary` (one line per counter, `- {count} {type} items`, then the error count). The newest
row of a process is also its "last run" time for incremental tasks, so tasks keep the PHP IOI's
process names (harvestRepository, syncWorksToORCID, ...).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select

from ioi.config import Settings
from ioi.extensions import db
from ioi.mail import MailError, build_message, send
from ioi.models import Message

log = logging.getLogger(__name__)

# Counters that do not mean something changed.
QUIET_COUNTERS = ("all", "unchanged", "skipped")


class TaskReport:
    """Collects what a task did: counters in first-seen order, log lines and errors."""

    def __init__(self, process: str):
        self.process = process
        self.counters: Counter[str] = Counter()
        self.lines: list[str] = []
        self.errors = 0

    def count(self, kind: str, n: int = 1) -> None:
        self.counters[kind] += n

    def log(self, line: str) -> None:
        self.lines.append(line)

    def error(self, line: str) -> None:
        self.errors += 1
        self.lines.append(f"ERROR: {line}")

    @property
    def has_changes(self) -> bool:
        return any(n for kind, n in self.counters.items() if not kind.startswith(QUIET_COUNTERS))

    def summary(self) -> str:
        lines = [f"- {n} {kind} items" for kind, n in self.counters.items()]
        lines.append(f"- {self.errors} errors")
        return "\n".join(lines)

    def full_text(self) -> str:
        return "\n".join([*self.lines, "", "Summary:", self.summary()])


def save_report(report: TaskReport, now: datetime) -> None:
    """Add the report and summary rows to the session; the caller commits."""
    db.session.add_all(
        [
            Message(process=report.process, type="report", message=report.full_text(), timestamp=now),
            Message(process=report.process, type="summary", message=report.summary(), timestamp=now),
        ]
    )


def should_email(report: TaskReport, level: str) -> bool:
    """EMAIL_REPORT_LEVEL: `allChanges` mails changes or errors, `errorsOnly` errors, empty nothing."""
    if level == "allChanges":
        return report.has_changes or report.errors > 0
    if level == "errorsOnly":
        return report.errors > 0
    return False


def email_report(report: TaskReport, settings: Settings) -> bool:
    """Mail the report to IR_EMAIL if the report level asks for it; True when sent.

    A mail failure is logged, never raised: the report is already saved.
    """
    if not should_email(report, settings.EMAIL_REPORT_LEVEL):
        return False
    status = f"{report.errors} error{'s' if report.errors != 1 else ''}" if report.errors else "completed"
    subject = f"[{settings.INSTITUTION_ABBREVIATION} IOI] {report.process}: {status}"
    try:
        send(settings, build_message(settings, settings.IR_EMAIL, subject, report.full_text()))
    except MailError as exc:
        log.error("report email for %s not sent: %s", report.process, exc)
        return False
    return True


def finish_report(report: TaskReport, settings: Settings, now: datetime) -> bool:
    """Save and commit the report, then email it per EMAIL_REPORT_LEVEL; True when emailed."""
    save_report(report, now)
    db.session.commit()
    return email_report(report, settings)


def last_run(process: str) -> datetime | None:
    """When the process last saved a message (its last run), or None."""
    return last_runs([process]).get(process)


def last_runs(processes: Iterable[str]) -> dict[str, datetime]:
    """When each of these processes last saved a message; processes that never did are absent."""
    rows = db.session.execute(
        select(Message.process, func.max(Message.timestamp))
        .where(Message.process.in_(set(processes)))
        .group_by(Message.process)
    )
    return {process: when for process, when in rows if when is not None}
