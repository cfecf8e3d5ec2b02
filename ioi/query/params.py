"""The query API's parameters, checked in the PHP IOI's order: response, request, id, year."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

ALL = "all"
MAX_ID_LENGTH = 64  # idInSource is varchar(100), `person_` included
YEAR = re.compile(r"[0-9]{4}")

INVALID_RESPONSE = "Invalid response type: use response=json or response=csv."
INVALID_REQUEST = "Invalid request type: use request=orcid or request=works."
INVALID_ID = "Invalid id: give {param}=<person id> or {param}=all."
INVALID_YEAR = "Invalid year: use year=all or a four-digit year."
NO_MATCH = "No match found for this id."
BULK_ORCID_ONLY = "Invalid request type: {param}=all is only available with request=orcid."


class QueryError(ValueError):
    """A parameter the API refuses: the plain message and its HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Query:
    request: Literal["orcid", "works"]
    response: Literal["json", "csv"]
    person_id: str  # or ALL
    year: str | None  # None for all years


def id_parameter(abbrev: str) -> str:
    """The person id parameter: the institution abbreviation in lower case + `id` (e.g. `tuid`)."""
    return f"{abbrev.lower()}id"


@lru_cache(maxsize=8)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)  # \d means 0-9, not every script's digits


def parse_query(args: Mapping[str, str], abbrev: str, id_pattern: str) -> Query:
    """Check the parameters (first value of each; unknown ones ignored). Raises QueryError."""
    response = args.get("response", "json")
    if response not in ("json", "csv"):
        raise QueryError(INVALID_RESPONSE)
    request = args.get("request", "")
    if request not in ("orcid", "works"):
        raise QueryError(INVALID_REQUEST)
    param = id_parameter(abbrev)
    person_id = args.get(param, "")
    if person_id != ALL and (len(person_id) > MAX_ID_LENGTH or not _compiled(id_pattern).fullmatch(person_id)):
        raise QueryError(INVALID_ID.format(param=param))
    year = args.get("year", ALL)
    if year != ALL and not YEAR.fullmatch(year):
        raise QueryError(INVALID_YEAR)
    if person_id == ALL and request != "orcid":
        raise QueryError(BULK_ORCID_ONLY.format(param=param))
    return Query(request, response, person_id, None if year == ALL else year)  # type: ignore[arg-type]
