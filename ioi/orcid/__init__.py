"""The researcher's page: campus login, connect ORCID, review works and affiliations."""

from flask import Blueprint

bp = Blueprint("orcid", __name__, url_prefix="/orcid")
LEGACY_PATH = "/orcid.php"  # the PHP IOI's URL, still linked from emails, bookmarks and campus systems

from ioi.orcid import views  # noqa: E402


@bp.record_once
def _legacy_path(state) -> None:
    state.app.add_url_rule(LEGACY_PATH, "orcid.legacy", views.index, methods=["GET", "POST"])
