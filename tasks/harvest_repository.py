"""Cron task harvestRepository: harvest DSpace items changed since the last run into IOI.

python tasks/harvest_repository.py [--from-date YYYY-MM-DD | fromDate=YYYY-MM-DD]
                                   [--handle 10754/123456 | handle=10754/123456] [--dry-run]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ioi.services.harvest import PROCESS, harvest_repository  # noqa: E402
from ioi.taskframe import run_task  # noqa: E402

DESCRIPTION = (
    "Harvest the DSpace repository: list changed items through OAI-PMH, fetch each from the REST API and store "
    "its metadata; deleted items are retired. Resumes where the previous run stopped."
)


def main(argv: list[str] | None = None) -> int:
    return run_task(PROCESS, DESCRIPTION, harvest_repository, argv, options=("from_date", "handle"))


if __name__ == "__main__":
    sys.exit(main())
