"""Cron task syncWorksToORCID: add and update researchers' repository works on their ORCID records.

python tasks/sync_works_to_orcid.py [--dry-run] [--from-date YYYY-MM-DD | fromDate=YYYY-MM-DD]
                                    [--handle 10754/123456] [--orcid 0000-0002-1825-0097]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ioi.services.work_sync import DESCRIPTION, PROCESS, sync_works  # noqa: E402
from ioi.taskframe import run_task  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return run_task(PROCESS, DESCRIPTION, sync_works, argv, options=("from_date", "handle", "orcid"))


if __name__ == "__main__":
    sys.exit(main())
