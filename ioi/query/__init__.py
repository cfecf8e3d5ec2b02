"""The campus query API: ORCID iDs and works as JSON or CSV."""

from flask import Blueprint

bp = Blueprint("query", __name__, url_prefix="/query")
LEGACY_PATH = "/query.php"  # the PHP IOI's URL, still linked from emails, bookmarks and campus systems

from ioi.query import views  # noqa: E402


@bp.record_once
def _legacy_path(state) -> None:
    state.app.add_url_rule(LEGACY_PATH, "query.legacy", views.index, methods=["GET", "POST"])
