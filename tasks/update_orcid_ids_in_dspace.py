"""Cron task updateORCIDiDsInDSpace: write researchers' ORCID iDs to (or off) their author values in DSpace.

python tasks/update_orcid_ids_in_dspace.py [--dry-run]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ioi.services.dspace_writeback import PROCESS, update_orcid_ids_in_dspace  # noqa: E402
from ioi.taskframe import run_task  # noqa: E402

DESCRIPTION = (
    "For repository works researchers selected since the last run, add their ORCID iD to their author value in "
    "DSpace; for works they ignored, remove it. Each change adds a provenance entry; the item is then re-harvested."
)


def main(argv: list[str] | None = None) -> int:
    return run_task(PROCESS, DESCRIPTION, update_orcid_ids_in_dspace, argv)


if __name__ == "__main__":
    sys.exit(main())
