"""The campus query API: ORCID iDs and works as JSON or CSV."""

from flask import Blueprint

bp = Blueprint("query", __name__, url_prefix="/query")

from ioi.query import views  # noqa: E402,F401
