"""WSGI entry point: `gunicorn public.wsgi:app`, or `flask --app public/wsgi ...`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ioi import create_app  # noqa: E402

app = create_app()
