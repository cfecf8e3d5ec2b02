"""The OpenAPI 3 description of the query API, served at /query/openapi.json.

Written by hand; the person id parameter is named after the institution (`tuid` for TU), so the
document is built per app from its settings.
"""

from __future__ import annotations

from ioi.query.formats import WORK_COLUMNS, orcid_columns
from ioi.query.params import MAX_ID_LENGTH, id_parameter

TEXT = {"text/plain": {"schema": {"type": "string"}}}


def _string_object(columns: tuple[str, ...], description: str) -> dict:
    return {
        "type": "object",
        "description": description,
        "properties": {c: {"type": "string"} for c in columns},
        "required": list(columns),
        "additionalProperties": False,
    }


def openapi_document(abbrev: str, id_pattern: str) -> dict:
    """The document for an institution abbreviation and QUERY_ID_PATTERN."""
    param = id_parameter(abbrev)
    orcid_record = _string_object(
        orcid_columns(abbrev), f"A person's {abbrev} id, name (`Surname, Given`) and ORCID iD."
    )
    work = _string_object(
        WORK_COLUMNS,
        "One repository work. Repeated values are joined with `||`; Handle is the handle URL, Bibtex a BibTeX entry.",
    )
    parameters = [
        {
            "name": param,
            "in": "query",
            "required": True,
            "description": f"The person's {abbrev} id, or `all` for every person with an ORCID iD "
            "(request=orcid only; streamed as CSV or JSON lines).",
            "schema": {"type": "string", "maxLength": MAX_ID_LENGTH, "pattern": f"^(?:all|(?:{id_pattern}))$"},
        },
        {
            "name": "request",
            "in": "query",
            "required": True,
            "description": "`orcid`: the person's ORCID iD. `works`: the person's repository works, found by "
            "their ORCID iD when known, else by their name.",
            "schema": {"type": "string", "enum": ["orcid", "works"]},
        },
        {
            "name": "response",
            "in": "query",
            "required": False,
            "description": "Output format.",
            "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"},
        },
        {
            "name": "year",
            "in": "query",
            "required": False,
            "description": "Only works issued in this year (`dc.date.issued`); `all` for every year.",
            "schema": {"type": "string", "pattern": "^(?:all|[0-9]{4})$", "default": "all"},
        },
    ]
    www_authenticate = {
        "WWW-Authenticate": {"description": "The Bearer challenge.", "schema": {"type": "string"}, "required": True}
    }
    operation = {
        "summary": "A person's ORCID iD or repository works",
        "description": "Parameters are checked in this order: response, request, id, year; the first bad "
        "one is answered with a plain-text 400. Unknown parameters are ignored; for a repeated "
        "parameter the first value counts. CSV is UTF-8 with CRLF line ends; a cell starting with "
        "`=`, `+`, `-`, `@`, a tab or a line break is prefixed with `'` so spreadsheets do not run it "
        "(this includes every Bibtex cell). A person with no works gets an empty list or a header-only CSV.",
        "operationId": "query",
        "parameters": parameters,
        "security": [{"bearerAuth": []}, {"apiKeyHeader": []}],
        "responses": {
            "200": {
                "description": "request=orcid: one object (JSON) or one row (CSV). request=works: a list of "
                f"works (JSON) or one row per work (CSV). {param}=all: every person with an ORCID iD, "
                "streamed as CSV or as JSON lines (response=json).",
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [orcid_record, {"type": "array", "items": work}]},
                    },
                    "text/csv": {"schema": {"type": "string"}},
                    "application/x-ndjson": {
                        "schema": {"type": "string", "description": "One JSON object per line, as for request=orcid."}
                    },
                },
            },
            "400": {"description": "A parameter is invalid (the message says which).", "content": TEXT},
            "401": {"description": "No API key, or a wrong one.", "headers": www_authenticate, "content": TEXT},
            "403": {
                "description": "The API is not enabled (no keys configured), or the client address is not allowed.",
                "content": TEXT,
            },
            "404": {"description": "No person with this id, or (request=orcid) no ORCID iD for them.", "content": TEXT},
        },
    }
    legacy = {**operation, "operationId": "queryLegacy", "deprecated": True, "summary": "Same as /query"}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{abbrev} ORCID query API",
            "version": "1.0",
            "description": "Read a person's ORCID iD and repository works, as the PHP IOI's query.php did. "
            "Every call needs an API key (QUERY_API_KEYS); the deployer may also restrict client "
            "addresses (QUERY_ALLOWED_IPS).",
        },
        "paths": {"/query": {"get": operation}, "/query.php": {"get": legacy}},
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
        },
    }
