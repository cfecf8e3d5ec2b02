"""ORCID v3.0 write rules for the simulator: XSD validation, server-side checks, error bodies."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from functools import lru_cache
from pathlib import Path

from lxml import etree

import ioi

NS = {
    "common": "http://www.orcid.org/ns/common",
    "work": "http://www.orcid.org/ns/work",
    "employment": "http://www.orcid.org/ns/employment",
    "education": "http://www.orcid.org/ns/education",
    "activities": "http://www.orcid.org/ns/activities",
    "error": "http://www.orcid.org/ns/error",
    "bulk": "http://www.orcid.org/ns/bulk",
}
BULK_MAX = 100
SECTIONS = ("work", "employment", "education")
AFFILIATIONS = ("employment", "education")
MORE_INFO = "https://members.orcid.org/api/resources/troubleshooting"

WORK_TYPES = frozenset(
    """annotation artistic-performance blog-post book-chapter book-review book cartographic-material clinical-study
    conference-abstract conference-output conference-paper conference-poster conference-presentation
    conference-proceedings data-management-plan data-set design dictionary-entry disclosure dissertation-thesis
    edited-book encyclopedia-entry image invention journal-article journal-issue learning-object lecture-speech license
    magazine-article manual moving-image musical-composition newsletter-article newspaper-article online-resource other
    patent physical-object preprint public-speech registered-copyright report research-technique research-tool review
    software sound spin-off-company standards-and-policy supervised-student-publication technical-standard test
    trademark transcription translation website working-paper undefined""".split()
)
WORK_TYPE_ALIASES = {
    "article-journal": "journal-article",
    "chapter": "book-chapter",
    "dataset": "data-set",
    "standard": "standards-and-policy",
}
CITATION_TYPES = frozenset(
    "formatted-unspecified bibtex formatted-apa formatted-harvard formatted-ieee formatted-mla formatted-vancouver "
    "formatted-chicago ris".split()
)
RELATIONSHIPS = frozenset({"self", "part-of", "version-of", "funded-by"})
FUNDED_BY_TYPES = frozenset({"grant_number", "proposal-id", "uri", "doi"})
ORG_SOURCES = frozenset({"RINGGOLD", "GRID", "FUNDREF", "LEI", "ROR"})
# A working subset of ORCID's identifier registry (https://pub.orcid.org/v3.0/identifiers).
EXTERNAL_ID_TYPES = frozenset(
    """agr ark arxiv asin asin-tld authenticusid bibcode cba cienciaiul cit ctx dnb doi eid emdb empiar ethos
    grant_number hal handle hir isbn isni issn jfm jstor k10plus kuid lccn lensid mr oclc ol osti other-id pat pdb pmc
    pmid ppr proposal-id rfc rrid source-work-id ssrn uri urn wosuid zbl""".split()
)


class OrcidApiError(Exception):
    """An ORCID API error: HTTP status, ORCID error code and messages."""

    def __init__(self, status: int, code: int | None, developer: str, user: str | None = None):
        super().__init__(developer)
        self.status = status
        self.code = code
        self.developer = developer
        self.user = user or "There was an error when updating the record. Please try again."

    def as_dict(self) -> dict:
        body = {"response-code": self.status, "developer-message": self.developer, "user-message": self.user}
        if self.code is not None:
            body["error-code"] = self.code
        body["more-info"] = MORE_INFO
        return body

    def to_element(self) -> etree._Element:
        root = etree.Element(f"{{{NS['error']}}}error", nsmap={"error": NS["error"]})
        for key, value in self.as_dict().items():
            etree.SubElement(root, f"{{{NS['error']}}}{key}").text = str(value)
        return root

    def to_xml(self) -> bytes:
        return etree.tostring(self.to_element(), xml_declaration=True, encoding="UTF-8", standalone=True)

    def to_json(self) -> bytes:
        return json.dumps(self.as_dict()).encode()


def bad(code: int, message: str) -> OrcidApiError:
    """A 400 error with the given ORCID error code."""
    return OrcidApiError(400, code, f"400 Bad Request: {message}")


def schema_dir() -> Path | None:
    """The ORCID XSD directory (env IOI_ORCID_SCHEMA_DIR, else ../shared/orcid-schema); None when absent."""
    configured = os.environ.get("IOI_ORCID_SCHEMA_DIR")
    path = Path(configured) if configured else Path(ioi.__file__).resolve().parents[2] / "shared" / "orcid-schema"
    return path if (path / "record_3.0" / "work-3.0.xsd").is_file() else None


_schema_lock = threading.Lock()


@lru_cache(maxsize=16)
def _schema(directory: str, section: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(Path(directory) / "record_3.0" / f"{section}-3.0.xsd")))


def xsd_errors(root: etree._Element, section: str, directory: Path | None) -> list[str]:
    """Schema errors of a parsed document against `{section}-3.0.xsd`; [] when valid or no schemas."""
    if directory is None:
        return []
    with _schema_lock:  # lxml validators keep per-call error logs; serialise their use
        schema = _schema(str(directory), section)
        if schema.validate(root):
            return []
        return [f"line {e.line}: {e.message}" for e in schema.error_log]


def parse_document(body: bytes, section: str, directory: Path | None) -> etree._Element:
    """Parse and XSD-validate an incoming `section` document; raises OrcidApiError (400/9001)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise bad(9001, f"Invalid incoming message: not well-formed XML ({exc})") from None
    expected = f"{{{NS[section]}}}{section}"
    if root.tag != expected:
        raise bad(9001, f"Invalid incoming message: expected root element {section}:{section}, got {root.tag}")
    errors = xsd_errors(root, section, directory)
    if errors:
        raise bad(9001, "Invalid incoming message: " + "; ".join(errors[:5]))
    return root


def _text(root: etree._Element, path: str) -> str:
    found = root.find(path, NS)
    return (found.text or "").strip() if found is not None else ""


def put_code_of(root: etree._Element) -> int | None:
    """The put-code attribute of a document, or None."""
    value = root.get("put-code")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise bad(9034, f"Invalid put-code {value!r}") from None


def check_date(element: etree._Element | None, label: str) -> dt.date | None:
    """Validate a fuzzy date (4-digit year, 2-digit month/day, a real date); returns its earliest day."""
    if element is None:
        return None
    year, month, day = (_text(element, f"common:{part}") for part in ("year", "month", "day"))
    if not re.fullmatch(r"\d{4}", year):
        raise bad(9049, f"Invalid {label}: year {year!r} must have four digits")
    if month and not re.fullmatch(r"\d{2}", month):
        raise bad(9049, f"Invalid {label}: month {month!r} must be given with two digits")
    if day and not re.fullmatch(r"\d{2}", day):
        raise bad(9049, f"Invalid {label}: day {day!r} must be given with two digits")
    if day and not month:
        raise bad(9049, f"Invalid {label}: a day needs a month")
    try:
        return dt.date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        raise bad(9049, f"Invalid {label}: {year}-{month}-{day} is not a real date") from None


def external_ids(root: etree._Element) -> list[tuple[str, str, str]]:
    """(type, value, relationship) of the document's own external ids."""
    return [
        (
            _text(e, "common:external-id-type"),
            _text(e, "common:external-id-value"),
            _text(e, "common:external-id-relationship"),
        )
        for e in root.findall("common:external-ids/common:external-id", NS)
    ]


def normalize_id(id_type: str, value: str) -> tuple[str, str]:
    """The comparison key of an external id (case-insensitive; DOIs without resolver prefix)."""
    value = value.strip().lower()
    if id_type.lower() == "doi":
        value = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:)", "", value)
    return id_type.strip().lower(), value


def self_ids(root: etree._Element) -> set[tuple[str, str]]:
    """Normalised keys of the document's `self` external ids (the duplicate-detection keys)."""
    return {normalize_id(t, v) for t, v, rel in external_ids(root) if rel == "self"}


def _check_external_ids(root: etree._Element, require_self: bool) -> None:
    ids = external_ids(root)
    if require_self and not ids:
        raise bad(9023, "Invalid external-ids: a work needs at least one external identifier")
    for id_type, value, relationship in ids:
        if id_type not in EXTERNAL_ID_TYPES:
            raise bad(9023, f"Invalid external-id {id_type}")
        if not value:
            raise bad(9023, f"Invalid external-id {id_type}: the value is empty")
        if relationship not in RELATIONSHIPS:
            raise bad(9023, f"Invalid external-id {id_type}: relationship {relationship!r} is not allowed")
        if relationship == "funded-by" and id_type not in FUNDED_BY_TYPES:
            raise bad(9023, f"Invalid external-id {id_type}: funded-by is not allowed for this type")
    if require_self and not any(rel == "self" for _, _, rel in ids):
        raise bad(9023, "Invalid external-ids: at least one external identifier must have relationship 'self'")


def validate_work(root: etree._Element) -> None:
    """Server-side rules for a work (title, type, external ids, dates, citation)."""
    if not _text(root, "work:title/common:title"):
        raise bad(9022, "Invalid work: a title is required")
    work_type = _text(root, "work:type")
    if work_type not in WORK_TYPES and work_type not in WORK_TYPE_ALIASES:
        raise bad(9037, f"Invalid work type {work_type!r}")
    citation = root.find("work:citation", NS)
    if citation is not None:
        if _text(citation, "work:citation-type") not in CITATION_TYPES:
            raise bad(9037, f"Invalid citation type {_text(citation, 'work:citation-type')!r}")
        if not _text(citation, "work:citation-value"):
            raise bad(9001, "Invalid citation: the citation value is empty")
    check_date(root.find("common:publication-date", NS), "publication-date")
    _check_external_ids(root, require_self=True)


def validate_affiliation(root: etree._Element) -> None:
    """Server-side rules for employment/education (organization, address, disambiguation, dates)."""
    org = root.find("common:organization", NS)
    if org is None or not _text(org, "common:name"):
        raise bad(9046, "Invalid affiliation: an organization with a name is required")
    city, region, country = (_text(org, f"common:address/common:{part}") for part in ("city", "region", "country"))
    if region and not country:
        raise bad(9061, "Invalid organization address: a region needs a country")
    if not city or not country:
        raise bad(9060, "Invalid organization address: city and country are required for education and employment")
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise bad(9060, f"Invalid organization address: country {country!r} is not an ISO 3166-1 alpha-2 code")
    identifier = _text(org, "common:disambiguated-organization/common:disambiguated-organization-identifier")
    source = _text(org, "common:disambiguated-organization/common:disambiguation-source")
    if not identifier or not source:
        raise bad(9045, "Invalid organization: a disambiguated organization (identifier and source) is required")
    if source not in ORG_SOURCES:
        raise bad(9045, f"Invalid organization: disambiguation source {source!r} is not one of {sorted(ORG_SOURCES)}")
    start = check_date(root.find("common:start-date", NS), "start-date")
    end = check_date(root.find("common:end-date", NS), "end-date")
    if start and end and end < start:
        raise bad(9055, "Invalid dates: the end date is before the start date")
    _check_external_ids(root, require_self=False)


def validate(root: etree._Element, section: str) -> None:
    """Apply the server rules of `section` to a schema-valid document."""
    if section == "work":
        validate_work(root)
    else:
        validate_affiliation(root)


def duplicate_message(put_code: int) -> str:
    """The 409/9021 developer message, naming the existing item's put-code."""
    return (
        "409 Conflict: You have already added this activity (matched by external identifiers), please see element "
        f"with put-code {put_code}. If you are trying to edit the item, please use PUT instead of POST."
    )
