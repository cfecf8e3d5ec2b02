"""The query endpoint: parse, check access, call the works service, serialise."""

from __future__ import annotations

from functools import wraps

from flask import Response, current_app, request

from ioi import settings_of
from ioi.config import Settings
from ioi.query import CACHE, bp, formats
from ioi.query.access import check_access
from ioi.query.openapi import openapi_document
from ioi.query.params import ALL, NO_MATCH, Query, QueryError, parse_query
from ioi.services.works import find_person, find_person_works, iter_people_with_orcid


def api_key_required(view):
    """Refuse with 403 (API closed, address not allowed) or 401 (no or wrong key) before the view runs."""

    @wraps(view)
    def checked(*args, **kwargs):
        settings = settings_of(current_app)
        denial = check_access(
            settings.query_api_keys, settings.query_allowed_networks, request.remote_addr, request.headers
        )
        if denial is not None:
            return formats.text_response(denial.message, denial.status, denial.headers)
        return view(*args, **kwargs)

    return checked


@bp.get("", strict_slashes=False)
@api_key_required
def index():
    """`{abbrev}id`, `request`, `response`, `year` as the PHP query.php took them; see openapi.py."""
    settings = settings_of(current_app)
    abbrev = settings.INSTITUTION_ABBREVIATION
    try:
        query = parse_query(request.args, abbrev, settings.QUERY_ID_PATTERN)
    except QueryError as error:
        return formats.text_response(error.message, error.status)

    if query.person_id == ALL:
        rows = (formats.orcid_row(p, abbrev) for p in iter_people_with_orcid())
        if query.response == "csv":
            return formats.stream_csv(formats.orcid_columns(abbrev), rows, "orcids.csv")
        return formats.stream_ndjson(rows)

    return current_app.extensions[CACHE].answer(query, lambda: _person_answer(query, abbrev, settings))


def _person_answer(query: Query, abbrev: str, settings: Settings) -> Response:
    """One person's iD or works, built from the database."""
    person = find_person(query.person_id)
    if person is None or (query.request == "orcid" and not person.orcid):
        return formats.text_response(NO_MATCH, 404)
    if query.request == "orcid":
        row = formats.orcid_row(person, abbrev)
        if query.response == "csv":
            return formats.csv_response(formats.orcid_columns(abbrev), [row], f"orcid-{person.person_id}.csv")
        return formats.json_response(row)

    works = find_person_works(person, query.year, settings.orcid_enabled_fields, formats.WORK_FIELDS)
    rows = [formats.work_row(work, f"{abbrev.lower()}_") for work in works]
    if query.response == "csv":
        return formats.csv_response(formats.WORK_COLUMNS, rows, f"works-{person.person_id}.csv")
    return formats.json_response(rows)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 description of this API (public: it holds no data)."""
    settings = settings_of(current_app)
    return formats.json_response(openapi_document(settings.INSTITUTION_ABBREVIATION, settings.QUERY_ID_PATTERN))
