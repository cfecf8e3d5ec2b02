"""The one-command demo: IOI on its own SQLite database under instance/, on loopback."""

from __future__ import annotations

import os
import signal
import sys
import threading

from flask_migrate import upgrade

from ioi import create_app
from ioi.sandbox.server import BackgroundServer


def demo_settings(port: int) -> dict:
    """Settings of the demo: embedded database, demo mode (generated secret), local URLs."""
    from ioi.config import PROJECT_ROOT

    return {
        "IOI_DEMO": True,
        "DATABASE_URL": os.environ.get("IOI_DEMO_DATABASE_URL")
        or f"sqlite:///{PROJECT_ROOT / 'instance' / 'demo.sqlite'}",
        "OAUTH_REDIRECT_URI": f"http://127.0.0.1:{port}/orcid",
        "INSTITUTION_ABBREVIATION": "DEMO",
        "INSTITUTION_NAME": "Demo University",
    }


def run_demo(host: str = "127.0.0.1", port: int = 5000) -> int:
    """Migrate the demo database, serve the app until Ctrl-C or SIGTERM; returns an exit status."""
    app = create_app(demo_settings(port))
    with app.app_context():
        upgrade()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with BackgroundServer(app, host=host, port=port) as web:
        print(f"IOI demo running at {web.url}/orcid  (admin area {web.url}/admin)", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        stop.wait()
    print("IOI demo stopped.", file=sys.stderr, flush=True)
    return 0
