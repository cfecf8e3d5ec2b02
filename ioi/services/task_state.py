"""What a cron task keeps for its next run, such as where it resumes.

Each fact is a value in the metadata store under source `ioi`, with the task's process name as
idInSource, so it is versioned like every other value and needs no table of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ioi.services.metadata_store import read_record, read_records, write_record

SOURCE = "ioi"


def read(process: str, name: str) -> str | None:
    """The task's recorded value of `name`, or None if it never recorded one."""
    values = read_record(SOURCE, process).get(name)
    return values[0].value if values else None


def write(process: str, name: str, value: str, now: datetime) -> None:
    """Record `name` for the task's next run (in the current transaction; the caller commits)."""
    write_record(SOURCE, process, {name: [value]}, now)


def read_time(process: str, name: str) -> datetime | None:
    return read_times([process], name).get(process)


def read_times(processes: Iterable[str], name: str) -> dict[str, datetime]:
    """Each task's recorded time `name`, in one query; tasks that never recorded one are absent."""
    records = read_records(SOURCE, processes)
    return {p: datetime.fromisoformat(r[name][0].value) for p, r in records.items() if r.get(name)}


def write_time(process: str, name: str, when: datetime, now: datetime) -> None:
    write(process, name, when.isoformat(sep=" "), now)
