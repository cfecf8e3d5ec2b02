"""The admin area: dashboard, invitations, name fixes, uploads, task reports (admins only)."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from ioi.admin import views  # noqa: E402,F401
