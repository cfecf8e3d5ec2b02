"""The admin area: dashboard, invitations, name fixes, uploads, task reports (admins only)."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")
LEGACY_PATH = "/admin.php"  # the PHP IOI's URL, still linked from emails, bookmarks and campus systems

from ioi.admin import views  # noqa: E402


@bp.record_once
def _legacy_path(state) -> None:
    state.app.add_url_rule(LEGACY_PATH, "admin.legacy", views.index, methods=["GET"])
