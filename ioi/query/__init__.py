"""The campus query API: ORCID iDs and works as JSON or CSV."""

from __future__ import annotations

import shlex
from urllib.parse import urlencode

from flask import Blueprint

from ioi.query.cache import AnswerCache

bp = Blueprint("query", __name__, url_prefix="/query")
LEGACY_PATH = "/query.php"  # the PHP IOI's URL, still linked from emails, bookmarks and campus systems
CACHE = "ioi.query_cache"

from ioi.query import views  # noqa: E402


@bp.record_once
def _setup(state) -> None:
    """The legacy path, and this app's answer cache (one per web worker process)."""
    state.app.add_url_rule(LEGACY_PATH, "query.legacy", views.index, methods=["GET"])
    settings = state.app.extensions["ioi.settings"]
    state.app.extensions[CACHE] = AnswerCache(settings.QUERY_CACHE_MB * 2**20, settings.QUERY_CACHE_SECONDS)


def example_curl(base_url: str, api_key: str, abbrev: str, person_id: str) -> str:
    """A working curl command line fetching a person's works as JSON (for the demo and the docs)."""
    params = urlencode({f"{abbrev.lower()}id": person_id, "request": "works", "response": "json"})
    url = f"{base_url.rstrip('/')}/query?{params}"
    return f"curl -sS -H {shlex.quote(f'Authorization: Bearer {api_key}')} {shlex.quote(url)}"
