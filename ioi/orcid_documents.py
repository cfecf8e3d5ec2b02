"""ORCID API 3.0 XML documents: works and affiliations built from IOI data, and the small parsers
the sync needs (put-code from a Location header or a 409 message, the works summary).

Pure functions on plain values: no Flask, no database. Schema validation is for tests and tools;
production code never needs the XSDs at run time.

Decisions:
- A work's fields are emitted in the XSD order (title, journal-title, type, publication-date,
  external-ids, url) whatever the mapping `place`; `place` only orders the values of one field.
- ORCID rejects a work without a `self` external id, so when the mapped fields give none the
  item's handle is used: first a hdl.handle.net URL among `dc.identifier.uri`, then the `handle`
  argument. Values that do not look like the identifier they claim to be (a DOI not starting
  with `10.`, a non-numeric PMID) are left out rather than sent for ORCID to reject.
- The work type goes through the workType mapping; anything ORCID would not accept on write
  (including `undefined`) becomes `other`; ORCID's documented aliases are translated.
- Texts longer than the schema allows are cut to the maximum length.
"""

from __future__ import annotations

import calendar
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from lxml import etree

NS_COMMON = "http://www.orcid.org/ns/common"
NS_WORK = "http://www.orcid.org/ns/work"
NS_ACTIVITIES = "http://www.orcid.org/ns/activities"
NS_ERROR = "http://www.orcid.org/ns/error"
NS_AFFILIATION = {
    "employment": "http://www.orcid.org/ns/employment",
    "education": "http://www.orcid.org/ns/education",
}

# Work types ORCID accepts on write (orcid-model WorkType.java); `undefined` is left out on purpose.
WORK_TYPES = frozenset(
    """annotation artistic-performance blog-post book-chapter book-review book cartographic-material
    clinical-study conference-abstract conference-output conference-paper conference-poster
    conference-presentation conference-proceedings data-management-plan data-set design dictionary-entry
    disclosure dissertation-thesis edited-book encyclopedia-entry image invention journal-article
    journal-issue learning-object lecture-speech license magazine-article manual moving-image
    musical-composition newsletter-article newspaper-article online-resource other patent physical-object
    preprint public-speech registered-copyright report research-technique research-tool review software
    sound spin-off-company standards-and-policy supervised-student-publication technical-standard test
    trademark transcription translation website working-paper""".split()
)
WORK_TYPE_ALIASES = {
    "article-journal": "journal-article",
    "chapter": "book-chapter",
    "dataset": "data-set",
    "standard": "standards-and-policy",
    "dissertation": "dissertation-thesis",
}
DEFAULT_WORK_TYPE = "other"

HANDLE_URL = re.compile(r"^https?://hdl\.handle\.net/(\S+)$", re.IGNORECASE)
BARE_HANDLE = re.compile(r"^\d+(\.\d+)*/\S+$")
DOI_PREFIX = re.compile(r"^(doi:\s*|https?://(dx\.)?doi\.org/)", re.IGNORECASE)
ARXIV_PREFIX = re.compile(r"^(arxiv:\s*|https?://arxiv\.org/abs/)", re.IGNORECASE)
PMID_PREFIX = re.compile(r"^(pmid:\s*|https?://pubmed\.ncbi\.nlm\.nih\.gov/)", re.IGNORECASE)
PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?(?:[T ].*)?$")
PUT_CODE_IN_MESSAGE = re.compile(r"put-code (\d+)")

TITLE_MAX = 1000  # common:string-1000
LONG_TEXT_MAX = 4000  # common:long-text
SHORT_TEXT_MAX = 500  # common:short-text


class DocumentError(ValueError):
    """The data cannot make a document ORCID would accept (no title, no self id, no organization...)."""


def _c(name: str) -> str:
    return f"{{{NS_COMMON}}}{name}"


def _w(name: str) -> str:
    return f"{{{NS_WORK}}}{name}"


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _clean(value: str | None, limit: int) -> str:
    return " ".join((value or "").split())[:limit]


# ---------------------------------------------------------------------------------------- dates


def _date_parts(value: date | str) -> tuple[int, int | None, int | None] | None:
    if isinstance(value, date):  # datetime is a date too
        return (value.year, value.month, value.day)
    match = PARTIAL_DATE.match(value.strip())
    if not match:
        return None
    return (int(match[1]), int(match[2]) if match[2] else None, int(match[3]) if match[3] else None)


def parse_partial_date(value: date | str | None) -> tuple[int, int | None, int | None] | None:
    """(year, month, day) of a date or a 'YYYY[-MM[-DD]]' string (a time part is ignored); None when
    empty or unreadable or outside the schema's years 1900-2100. An impossible month or day is
    dropped with what follows it, keeping the valid, less precise part."""
    parts = _date_parts(value) if value is not None else None
    if parts is None or not 1900 <= parts[0] <= 2100:
        return None
    year, month, day = parts
    if month is None or not 1 <= month <= 12:
        return (year, None, None)
    if day is None or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return (year, month, None)
    return (year, month, day)


def _add_date(parent: etree._Element, name: str, parts: tuple[int, int | None, int | None]) -> None:
    year, month, day = parts
    element = _sub(parent, _c(name))
    _sub(element, _c("year"), f"{year:04d}")
    if month is not None:
        _sub(element, _c("month"), f"{month:02d}")
        if day is not None:
            _sub(element, _c("day"), f"{day:02d}")


# ---------------------------------------------------------------------------------------- works


@dataclass(frozen=True)
class FieldMapping:
    """One 'work' mapping row: a repository field feeding an ORCID work field."""

    source_field: str
    orcid_field: str
    place: int | None = None


MappingSpec = FieldMapping | tuple[str, str, int | None]


def mappings_from_rows(rows: Iterable[Any]) -> tuple[list[FieldMapping], dict[str, str]]:
    """Split `mappings` rows (model objects or dicts with sourceField, entryType, place, orcidField)
    into the work field mappings and the dc.type → ORCID type table."""
    fields: list[FieldMapping] = []
    types: dict[str, str] = {}
    for row in rows:
        get = row.get if isinstance(row, Mapping) else lambda name, _row=row: getattr(_row, name)
        if get("entryType") == "work":
            fields.append(FieldMapping(get("sourceField"), get("orcidField"), get("place")))
        elif get("entryType") == "workType":
            types[get("sourceField")] = get("orcidField")
    return fields, types


def orcid_work_type(dspace_types: Iterable[str], work_types: Mapping[str, str]) -> str:
    """The ORCID type of the first dc.type value the workType table maps to a type ORCID accepts,
    else `other`. Exact match first, then case-insensitive."""
    folded = {key.casefold(): value for key, value in work_types.items()}
    for value in dspace_types:
        value = value.strip()
        mapped = work_types.get(value) or folded.get(value.casefold())
        if mapped:
            mapped = WORK_TYPE_ALIASES.get(mapped.strip().lower(), mapped.strip().lower())
            if mapped in WORK_TYPES:
                return mapped
    return DEFAULT_WORK_TYPE


def external_id(id_type: str, raw: str) -> tuple[str, str, str | None] | None:
    """(type, value, url) of one identifier as ORCID expects it, or None when the value is not
    usable as that type. Unknown types pass through unchanged, without a URL."""
    value = raw.strip()
    if not value:
        return None
    if id_type == "doi":
        value = DOI_PREFIX.sub("", value)
        return ("doi", value, f"https://doi.org/{value}") if value.startswith("10.") and " " not in value else None
    if id_type == "handle":
        match = HANDLE_URL.match(value)
        if match:
            value = match[1]
        elif not BARE_HANDLE.match(value):
            return None
        return ("handle", value, f"https://hdl.handle.net/{value}")
    if id_type == "pmid":
        value = PMID_PREFIX.sub("", value).strip("/")
        return ("pmid", value, f"https://pubmed.ncbi.nlm.nih.gov/{value}/") if value.isdigit() else None
    if id_type == "arxiv":
        value = ARXIV_PREFIX.sub("", value)
        return ("arxiv", value, f"https://arxiv.org/abs/{value}") if " " not in value else None
    return (id_type, value, None)


def _values_by_orcid_field(item: Mapping[str, list[str]], mappings: Iterable[MappingSpec]) -> dict[str, list[str]]:
    specs = [m if isinstance(m, FieldMapping) else FieldMapping(*m) for m in mappings]
    specs.sort(key=lambda m: (m.place is None, m.place or 0))
    values: dict[str, list[str]] = {}
    for spec in specs:
        for value in item.get(spec.source_field) or []:
            if value and value.strip():
                values.setdefault(spec.orcid_field, []).append(value.strip())
    return values


def build_work(
    item: Mapping[str, list[str]],
    mappings: Iterable[MappingSpec],
    work_types: Mapping[str, str],
    put_code: str | int | None = None,
    *,
    handle: str | None = None,
) -> bytes:
    """The ORCID 3.0 work XML for a repository item's live values (by DSpace field).

    `mappings` are (source_field, orcid_field, place) rows of entryType 'work'; `work_types` maps
    dc.type values to ORCID types; `put_code` is set for an update; `handle` is the item's handle,
    the self id of last resort. Raises DocumentError when there is no title or no usable id.
    """
    values = _values_by_orcid_field(item, mappings)
    titles = values.get("title", [])
    if not titles:
        raise DocumentError("a work needs a title")

    root = etree.Element(_w("work"), nsmap={"common": NS_COMMON, "work": NS_WORK})
    if put_code is not None:
        root.set("put-code", str(put_code))
    _sub(_sub(root, _w("title")), _c("title"), _clean(titles[0], TITLE_MAX))
    journals = values.get("journal-title", [])
    if journals:
        _sub(root, _w("journal-title"), _clean(journals[0], TITLE_MAX))
    _sub(root, _w("type"), orcid_work_type(values.get("type", []), work_types))
    for raw in values.get("publication-date", [])[:1]:
        parts = parse_partial_date(raw)
        if parts:
            _add_date(root, "publication-date", parts)

    ids = _work_external_ids(values, item, handle)
    if not ids:
        raise DocumentError("a work needs a self external id (DOI, handle, PMID, arXiv...)")
    container = _sub(root, _c("external-ids"))
    for id_type, value, url in ids:
        element = _sub(container, _c("external-id"))
        _sub(element, _c("external-id-type"), id_type)
        _sub(element, _c("external-id-value"), value)
        if url:
            _sub(element, _c("external-id-url"), url)
        _sub(element, _c("external-id-relationship"), "self")

    urls = [u for u in values.get("url", []) if re.match(r"^https?://\S+$", u)]
    if urls:
        _sub(root, _c("url"), urls[0])
    return _serialize(root)


def _work_external_ids(
    values: dict[str, list[str]], item: Mapping[str, list[str]], handle: str | None
) -> list[tuple[str, str, str | None]]:
    ids: list[tuple[str, str, str | None]] = []
    seen: set[tuple[str, str]] = set()
    for field, raws in values.items():
        if not field.startswith("external-ids."):
            continue
        for raw in raws:
            found = external_id(field.removeprefix("external-ids."), raw)
            if found and (found[0], found[1].lower()) not in seen:
                seen.add((found[0], found[1].lower()))
                ids.append(found)
    if not ids:  # every work needs a self id: fall back on the item's handle
        candidates = [u for u in item.get("dc.identifier.uri") or [] if HANDLE_URL.match(u.strip())]
        candidates += [handle] if handle else []
        for raw in candidates:
            found = external_id("handle", raw)
            if found:
                return [found]
    return ids


# --------------------------------------------------------------------------------- affiliations


@dataclass(frozen=True)
class Organization:
    """The affiliating organization; ROR wins over Ringgold when both are known."""

    name: str
    city: str
    country: str
    ringgold_id: str = ""
    ror_id: str = ""

    @classmethod
    def from_settings(cls, settings: Any) -> Organization:
        """The institution as configured (INSTITUTION_NAME, _CITY, _COUNTRY, _RINGGOLD_ID, _ROR_ID)."""
        return cls(
            name=settings.INSTITUTION_NAME,
            city=settings.INSTITUTION_CITY,
            country=settings.INSTITUTION_COUNTRY,
            ringgold_id=settings.INSTITUTION_RINGGOLD_ID or "",
            ror_id=settings.INSTITUTION_ROR_ID or "",
        )


@dataclass(frozen=True)
class Affiliation:
    """An employment or education at `organization`; dates are dates or 'YYYY[-MM[-DD]]' strings."""

    organization: Organization
    department_name: str | None = None
    role_title: str | None = None
    start_date: date | str | None = None
    end_date: date | str | None = None


def _affiliation_date(value: date | str | None, label: str) -> tuple[int, int | None, int | None] | None:
    """Strict: a given date must be whole and real, since dropping a part would misstate the affiliation."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parts = parse_partial_date(value)
    if parts is None or parts != _date_parts(value):
        raise DocumentError(f"{label} is not a real date between 1900 and 2100: {value!r}")
    return parts


def build_affiliation(
    kind: Literal["employment", "education"], affiliation: Affiliation, put_code: str | int | None = None
) -> bytes:
    """The ORCID 3.0 employment or education XML; `put_code` is set for an update.

    Raises DocumentError when ORCID would reject it: no organization name, city or country, no
    disambiguated id, an invalid date, or an end before the start.
    """
    if kind not in NS_AFFILIATION:
        raise ValueError(f"unknown affiliation kind {kind!r}")
    org = affiliation.organization
    if not (org.name.strip() and org.city.strip() and re.fullmatch(r"[A-Z]{2}", org.country or "")):
        raise DocumentError("the organization needs a name, a city and an ISO 3166 country code")
    if org.ror_id:
        disambiguated = (org.ror_id, "ROR")
    elif org.ringgold_id:
        disambiguated = (org.ringgold_id, "RINGGOLD")
    else:
        raise DocumentError("the organization needs a ROR or Ringgold id")
    start = _affiliation_date(affiliation.start_date, "start date")
    end = _affiliation_date(affiliation.end_date, "end date")
    if start and end and _ordinal(end, last=True) < _ordinal(start, last=False):
        raise DocumentError("the end date is before the start date")

    namespace = NS_AFFILIATION[kind]
    root = etree.Element(f"{{{namespace}}}{kind}", nsmap={"common": NS_COMMON, kind: namespace})
    if put_code is not None:
        root.set("put-code", str(put_code))
    department = _clean(affiliation.department_name, LONG_TEXT_MAX)
    if department:
        _sub(root, _c("department-name"), department)
    role = _clean(affiliation.role_title, LONG_TEXT_MAX)
    if role:
        _sub(root, _c("role-title"), role)
    if start:
        _add_date(root, "start-date", start)
    if end:
        _add_date(root, "end-date", end)
    organization = _sub(root, _c("organization"))
    _sub(organization, _c("name"), _clean(org.name, LONG_TEXT_MAX))
    address = _sub(organization, _c("address"))
    _sub(address, _c("city"), _clean(org.city, LONG_TEXT_MAX))
    _sub(address, _c("country"), org.country)
    element = _sub(organization, _c("disambiguated-organization"))
    _sub(element, _c("disambiguated-organization-identifier"), _clean(disambiguated[0], SHORT_TEXT_MAX))
    _sub(element, _c("disambiguation-source"), disambiguated[1])
    return _serialize(root)


def _ordinal(parts: tuple[int, int | None, int | None], *, last: bool) -> tuple[int, int, int]:
    """A comparable (y, m, d), filling what a partial date leaves open with its first or last value."""
    year, month, day = parts
    return (year, month or (12 if last else 1), day or (31 if last else 1))


# ------------------------------------------------------------------------- comparison, parsing

_PARSER = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)


def canonical(document: bytes | str, *, ignore_put_code: bool = True) -> bytes:
    """A canonical form (C14N 2.0, prefixes rewritten, insignificant whitespace removed) for deciding
    whether two documents carry the same content. The root put-code is dropped by default, so a
    document first POSTed compares equal to the same content built for a PUT."""
    data = document.encode("utf-8") if isinstance(document, str) else document
    root = etree.fromstring(data, _PARSER)
    if ignore_put_code:
        root.attrib.pop("put-code", None)
    return etree.canonicalize(root, strip_text=True, rewrite_prefixes=True).encode("utf-8")


def same_content(a: bytes | str | None, b: bytes | str | None) -> bool:
    """True when both documents have the same canonical content; a missing or unparseable one differs."""
    if not a or not b:
        return False
    try:
        return canonical(a) == canonical(b)
    except etree.XMLSyntaxError:
        return False


def parse_put_code(location: str | None) -> str | None:
    """The put-code in a 201 `Location` header: its last path segment when numeric."""
    if not location:
        return None
    segment = location.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return segment if segment.isdigit() else None


def put_code_from_conflict(message: str | None) -> str | None:
    """The existing item's put-code quoted in a 409 duplicate message, if the message has one."""
    match = PUT_CODE_IN_MESSAGE.search(message or "")
    return match[1] if match else None


def self_external_ids(document: bytes | str) -> list[tuple[str, str]]:
    """(type, value) of the `self` external ids at the top level of a work or affiliation."""
    data = document.encode("utf-8") if isinstance(document, str) else document
    root = etree.fromstring(data, _PARSER)
    return _self_ids(root.find(_c("external-ids")))


def _self_ids(container: etree._Element | None) -> list[tuple[str, str]]:
    ids = []
    for element in container.iterfind(_c("external-id")) if container is not None else []:
        if (element.findtext(_c("external-id-relationship")) or "").strip() == "self":
            id_type = (element.findtext(_c("external-id-type")) or "").strip()
            value = (element.findtext(_c("external-id-value")) or "").strip()
            if id_type and value:
                ids.append((id_type, value))
    return ids


@dataclass(frozen=True)
class WorkSummary:
    """One work of a works summary: its put-code, its source client (None for user-added works)
    and its `self` external ids."""

    put_code: str
    source_client_id: str | None
    external_ids: tuple[tuple[str, str], ...]


def parse_works_summary(document: bytes | str) -> list[WorkSummary]:
    """Every work-summary of a GET /{orcid}/works response, in document order."""
    data = document.encode("utf-8") if isinstance(document, str) else document
    root = etree.fromstring(data, _PARSER)
    summaries = []
    for element in root.iter(_w("work-summary")):
        client = element.findtext(f"{_c('source')}/{_c('source-client-id')}/{_c('path')}")
        summaries.append(
            WorkSummary(
                put_code=element.get("put-code", ""),
                source_client_id=client.strip() if client else None,
                external_ids=tuple(_self_ids(element.find(_c("external-ids")))),
            )
        )
    return summaries


def find_existing_put_code(
    summaries: Iterable[WorkSummary], external_ids: Iterable[tuple[str, str]], client_id: str | None = None
) -> str | None:
    """The put-code of the first summary sharing a `self` id with `external_ids` (types compared
    exactly, values case-insensitively), limited to works of `client_id` when given: the fallback
    when a 409 message carries no put-code."""
    wanted = {(t.lower(), v.strip().lower()) for t, v in external_ids}
    for summary in summaries:
        if client_id and summary.source_client_id != client_id:
            continue
        if any((t.lower(), v.strip().lower()) in wanted for t, v in summary.external_ids):
            return summary.put_code
    return None


# --------------------------------------------------------------------------------- validation

SCHEMA_FILES = {
    (NS_WORK, "work"): "record_3.0/work-3.0.xsd",
    (NS_AFFILIATION["employment"], "employment"): "record_3.0/employment-3.0.xsd",
    (NS_AFFILIATION["education"], "education"): "record_3.0/education-3.0.xsd",
    (NS_ACTIVITIES, "works"): "record_3.0/activities-3.0.xsd",
    (NS_ERROR, "error"): "record_3.0/error-3.0.xsd",
}


def schema_dir() -> Path:
    """Where the official ORCID XSDs are: $IOI_ORCID_SCHEMA_DIR, else shared/orcid-schema beside the project."""
    configured = os.environ.get("IOI_ORCID_SCHEMA_DIR")
    if configured:
        return Path(configured)
    import ioi

    return Path(ioi.__file__).resolve().parents[2] / "shared" / "orcid-schema"


def schemas_available() -> bool:
    """True when the XSDs can be found (validation is possible)."""
    return (schema_dir() / SCHEMA_FILES[(NS_WORK, "work")]).is_file()


@lru_cache(maxsize=16)
def _schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


def validate(document: bytes | str) -> list[str]:
    """Schema errors of a work, employment, education, works summary or error document against the
    official ORCID 3.0 XSDs (empty when valid). For tests and tools. Raises FileNotFoundError when the
    XSDs are not available."""
    data = document.encode("utf-8") if isinstance(document, str) else document
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    qname = etree.QName(root)
    relative = SCHEMA_FILES.get((qname.namespace, qname.localname))
    if relative is None:
        return [f"no ORCID 3.0 schema for root element {root.tag}"]
    path = schema_dir() / relative
    if not path.is_file():
        raise FileNotFoundError(f"ORCID schema not found: {path}")
    schema = _schema(path)
    if schema.validate(root):
        return []
    return [f"{error.line}: {error.message}" for error in schema.error_log]
