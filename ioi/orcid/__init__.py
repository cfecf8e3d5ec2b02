"""The researcher's page: campus login, connect ORCID, review works and affiliations."""

from flask import Blueprint

bp = Blueprint("orcid", __name__, url_prefix="/orcid")

from ioi.orcid import views  # noqa: E402,F401
