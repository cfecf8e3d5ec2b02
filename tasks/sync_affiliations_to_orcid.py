"""Cron task syncAffiliationsToORCID: add and update researchers' affiliations on their ORCID records.

python tasks/sync_affiliations_to_orcid.py [--dry-run] [--from-date YYYY-MM-DD | fromDate=YYYY-MM-DD]
                                           [--orcid 0000-0002-1825-0097 | orcid=0000-0002-1825-0097]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ioi.services.affiliation_sync import DESCRIPTION, PROCESS, sync_affiliations  # noqa: E402
from ioi.taskframe import run_task  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return run_task(PROCESS, DESCRIPTION, sync_affiliations, argv, options=("from_date", "orcid"))


if __name__ == "__main__":
    sys.exit(main())
