"""Times as IOI stores them: server-local, naive, whole seconds (like MySQL `timestamp`)."""

from datetime import datetime


def now() -> datetime:
    return datetime.now().replace(microsecond=0)
