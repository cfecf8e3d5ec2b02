"""ORCID 3.0 documents: every work and affiliation case is checked against the official XSDs
(when shared/orcid-schema is present) and against the server rules the XSDs leave out."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace

import pytest
from lxml import etree

from ioi import default_data
from ioi.orcid_documents import (
    NS_COMMON,
    NS_WORK,
    WORK_TYPES,
    Affiliation,
    DocumentError,
    FieldMapping,
    Organization,
    WorkSummary,
    build_affiliation,
    build_work,
    canonical,
    find_existing_put_code,
    mappings_from_rows,
    orcid_work_type,
    parse_partial_date,
    parse_put_code,
    parse_works_summary,
    put_code_from_conflict,
    same_content,
    schema_dir,
    schemas_available,
    self_external_ids,
    validate,
)

SCHEMAS = schemas_available()
NS = {"c": NS_COMMON, "w": NS_WORK}
FIELDS, WORK_TYPE_TABLE = mappings_from_rows(default_data.MAPPINGS)
FULL_ITEM = {
    "dc.title": ["Heat transfer in  porous media"],
    "dc.type": ["Article"],
    "dc.date.issued": ["2019-03-05"],
    "dc.identifier.doi": ["10.1016/j.ijheatmasstransfer.2019.01.001"],
    "dc.identifier.uri": ["http://hdl.handle.net/10754/1"],
    "dc.identifier.journal": ["International Journal of Heat and Mass Transfer"],
    "dc.identifier.pmid": ["31234567"],
    "dc.identifier.arxivid": ["arXiv:1901.00001"],
}
ORG = Organization("Test University", "Thuwal", "SA", ringgold_id="127355")
ROR_ORG = Organization("Test University", "Thuwal", "SA", ringgold_id="127355", ror_id="https://ror.org/01q3tbs38")


def assert_valid(document: bytes) -> None:
    """Server-side rules always; the XSD when the schemas are available."""
    root = etree.fromstring(document)
    assert root.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation") is None
    if SCHEMAS:
        assert validate(document) == []


def work(item: dict, **kwargs) -> etree._Element:
    document = build_work(item, FIELDS, WORK_TYPE_TABLE, **kwargs)
    assert_valid(document)
    return etree.fromstring(document)


def ids_of(root: etree._Element) -> list[tuple[str, str, str | None, str]]:
    return [
        (
            e.findtext("c:external-id-type", namespaces=NS),
            e.findtext("c:external-id-value", namespaces=NS),
            e.findtext("c:external-id-url", namespaces=NS),
            e.findtext("c:external-id-relationship", namespaces=NS),
        )
        for e in root.iterfind("c:external-ids/c:external-id", NS)
    ]


def date_of(root: etree._Element, path: str) -> tuple[str | None, ...]:
    return tuple(root.findtext(f"{path}/c:{part}", namespaces=NS) for part in ("year", "month", "day"))


@pytest.mark.skipif(not SCHEMAS, reason="shared/orcid-schema is absent: XSD checks are skipped")
def test_official_schemas_are_found():
    assert (schema_dir() / "record_3.0" / "work-3.0.xsd").is_file()


# ------------------------------------------------------------------------------------- works


def test_full_item_with_default_mappings_gives_every_field_in_schema_order():
    root = work(FULL_ITEM)
    assert etree.QName(root).namespace == NS_WORK and root.nsmap == {"common": NS_COMMON, "work": NS_WORK}
    assert [etree.QName(child).localname for child in root] == [
        "title",
        "journal-title",
        "type",
        "publication-date",
        "external-ids",
        "url",
    ]
    assert root.findtext("w:title/c:title", namespaces=NS) == "Heat transfer in porous media"
    assert root.findtext("w:journal-title", namespaces=NS) == "International Journal of Heat and Mass Transfer"
    assert root.findtext("w:type", namespaces=NS) == "journal-article"
    assert date_of(root, "c:publication-date") == ("2019", "03", "05")
    assert ids_of(root) == [
        (
            "doi",
            "10.1016/j.ijheatmasstransfer.2019.01.001",
            "https://doi.org/10.1016/j.ijheatmasstransfer.2019.01.001",
            "self",
        ),
        ("handle", "10754/1", "https://hdl.handle.net/10754/1", "self"),
        ("pmid", "31234567", "https://pubmed.ncbi.nlm.nih.gov/31234567/", "self"),
        ("arxiv", "1901.00001", "https://arxiv.org/abs/1901.00001", "self"),
    ]
    assert root.findtext("c:url", namespaces=NS) == "http://hdl.handle.net/10754/1"
    assert root.get("put-code") is None


def test_mapping_places_order_values_but_never_the_schema_order():
    reversed_places = [FieldMapping(m.source_field, m.orcid_field, 100 - (m.place or 0)) for m in FIELDS]
    document = build_work(FULL_ITEM, reversed_places, WORK_TYPE_TABLE)
    assert_valid(document)
    root = etree.fromstring(document)
    assert [etree.QName(child).localname for child in root][:3] == ["title", "journal-title", "type"]
    assert [i[0] for i in ids_of(root)] == ["arxiv", "pmid", "handle", "doi"]


def test_mappings_may_be_plain_tuples():
    tuples = [(m.source_field, m.orcid_field, m.place) for m in FIELDS]
    assert build_work(FULL_ITEM, tuples, WORK_TYPE_TABLE) == build_work(FULL_ITEM, FIELDS, WORK_TYPE_TABLE)


def test_put_code_is_set_for_an_update():
    root = work(FULL_ITEM, put_code="733536")
    assert root.get("put-code") == "733536"


@pytest.mark.parametrize(
    ("issued", "expected"),
    [
        ("2019-03-05", ("2019", "03", "05")),
        ("2019-3-5", ("2019", "03", "05")),
        ("2019-03-05T10:11:12Z", ("2019", "03", "05")),
        ("2019-07", ("2019", "07", None)),
        ("2019", ("2019", None, None)),
        ("2021-02-30", ("2021", "02", None)),
        ("2019-13-01", ("2019", None, None)),
        ("1850", (None, None, None)),
        ("in press", (None, None, None)),
    ],
)
def test_publication_date_is_zero_padded_and_as_precise_as_the_data(issued, expected):
    root = work({**FULL_ITEM, "dc.date.issued": [issued]})
    assert date_of(root, "c:publication-date") == expected


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("dc.identifier.doi", "10.1000/xyz123", ("doi", "10.1000/xyz123", "https://doi.org/10.1000/xyz123")),
        ("dc.identifier.doi", "https://doi.org/10.1000/ABC", ("doi", "10.1000/ABC", "https://doi.org/10.1000/ABC")),
        ("dc.identifier.doi", "doi:10.1000/1", ("doi", "10.1000/1", "https://doi.org/10.1000/1")),
        (
            "dc.identifier.uri",
            "http://hdl.handle.net/10754/622",
            ("handle", "10754/622", "https://hdl.handle.net/10754/622"),
        ),
        (
            "dc.identifier.uri",
            "https://hdl.handle.net/10754/7",
            ("handle", "10754/7", "https://hdl.handle.net/10754/7"),
        ),
        ("dc.identifier.pmid", "29311591", ("pmid", "29311591", "https://pubmed.ncbi.nlm.nih.gov/29311591/")),
        ("dc.identifier.arxivid", "1706.03762", ("arxiv", "1706.03762", "https://arxiv.org/abs/1706.03762")),
        (
            "dc.identifier.arxivid",
            "arXiv:1706.03762v2",
            ("arxiv", "1706.03762v2", "https://arxiv.org/abs/1706.03762v2"),
        ),
    ],
)
def test_each_external_id_type_is_a_self_id_with_its_url(field, value, expected):
    root = work({"dc.title": ["T"], "dc.type": ["Article"], field: [value]})
    assert ids_of(root) == [(*expected, "self")]


def test_values_that_are_not_the_identifier_they_claim_are_left_out():
    root = work({**FULL_ITEM, "dc.identifier.doi": ["not a doi"], "dc.identifier.pmid": ["PMC123"]})
    assert [i[0] for i in ids_of(root)] == ["handle", "arxiv"]


def test_repeated_identifiers_are_sent_once():
    root = work({**FULL_ITEM, "dc.identifier.doi": ["10.1/a", "https://doi.org/10.1/A"]})
    assert [i[1] for i in ids_of(root) if i[0] == "doi"] == ["10.1/a"]


def test_without_any_external_id_the_items_handle_is_the_self_id():
    root = work({"dc.title": ["T"]}, handle="10754/55")
    assert ids_of(root) == [("handle", "10754/55", "https://hdl.handle.net/10754/55", "self")]


def test_handle_fallback_reads_the_uri_even_when_the_mapping_omits_it():
    fields = [m for m in FIELDS if m.orcid_field != "external-ids.handle"]
    document = build_work({"dc.title": ["T"], "dc.identifier.uri": ["https://hdl.handle.net/10754/9"]}, fields, {})
    assert_valid(document)
    assert ids_of(etree.fromstring(document))[0][:2] == ("handle", "10754/9")


def test_a_work_without_any_id_or_title_is_refused():
    with pytest.raises(DocumentError, match="self external id"):
        build_work({"dc.title": ["T"], "dc.identifier.uri": ["https://example.org/x"]}, FIELDS, WORK_TYPE_TABLE)
    with pytest.raises(DocumentError, match="title"):
        build_work({"dc.title": ["  "], "dc.identifier.doi": ["10.1/a"]}, FIELDS, WORK_TYPE_TABLE)


def test_missing_journal_and_url_are_simply_absent():
    root = work({"dc.title": ["T"], "dc.type": ["Book"], "dc.identifier.doi": ["10.1/a"]})
    assert root.find("w:journal-title", NS) is None and root.find("c:url", NS) is None
    assert root.find("c:publication-date", NS) is None


def test_overlong_title_is_cut_to_the_schema_maximum():
    root = work({**FULL_ITEM, "dc.title": ["x" * 1500]})
    assert len(root.findtext("w:title/c:title", namespaces=NS)) == 1000


@pytest.mark.parametrize(
    ("dc_type", "expected"),
    [
        (["Article"], "journal-article"),
        (["article"], "journal-article"),
        (["Interpretive dance"], "other"),
        ([], "other"),
        (["Unknown", "Dataset"], "data-set"),
    ],
)
def test_dc_type_goes_through_the_work_type_mapping_defaulting_to_other(dc_type, expected):
    root = work({**FULL_ITEM, "dc.type": dc_type})
    assert root.findtext("w:type", namespaces=NS) == expected


@pytest.mark.parametrize(("mapped", "expected"), [("dataset", "data-set"), ("undefined", "other"), ("bogus", "other")])
def test_a_mapping_to_a_type_orcid_refuses_never_reaches_orcid(mapped, expected):
    assert orcid_work_type(["Odd"], {"Odd": mapped}) == expected


@pytest.mark.parametrize(
    "row", [r for r in default_data.MAPPINGS if r["entryType"] == "workType"], ids=lambda r: r["sourceField"]
)
def test_every_default_work_type_mapping_gives_a_valid_accepted_type(row):
    root = work({**FULL_ITEM, "dc.type": [row["sourceField"]]})
    assert root.findtext("w:type", namespaces=NS) == row["orcidField"]
    assert row["orcidField"] in WORK_TYPES


def test_mappings_from_rows_accepts_dicts_and_model_like_objects():
    objects = [SimpleNamespace(**row) for row in default_data.MAPPINGS]
    assert mappings_from_rows(objects) == (FIELDS, WORK_TYPE_TABLE)
    assert FieldMapping("dc.title", "title", 1) in FIELDS
    assert WORK_TYPE_TABLE["Article"] == "journal-article"


# ------------------------------------------------------------------------------ affiliations


@pytest.mark.parametrize("kind", ["employment", "education"])
def test_affiliation_with_ringgold_validates(kind):
    document = build_affiliation(kind, Affiliation(ORG, "Physical Sciences", "Professor", "2015-09-01", "2020-08-31"))
    assert_valid(document)
    root = etree.fromstring(document)
    assert etree.QName(root).localname == kind
    assert [etree.QName(child).localname for child in root] == [
        "department-name",
        "role-title",
        "start-date",
        "end-date",
        "organization",
    ]
    assert date_of(root, "c:start-date") == ("2015", "09", "01")
    assert date_of(root, "c:end-date") == ("2020", "08", "31")
    org = root.find("c:organization", NS)
    assert org.findtext("c:name", namespaces=NS) == "Test University"
    assert org.findtext("c:address/c:city", namespaces=NS) == "Thuwal"
    assert org.findtext("c:address/c:country", namespaces=NS) == "SA"
    assert org.findtext("c:disambiguated-organization/c:disambiguated-organization-identifier", namespaces=NS) == (
        "127355"
    )
    assert org.findtext("c:disambiguated-organization/c:disambiguation-source", namespaces=NS) == "RINGGOLD"


@pytest.mark.parametrize("kind", ["employment", "education"])
def test_ror_is_preferred_when_configured(kind):
    document = build_affiliation(kind, Affiliation(ROR_ORG, role_title="PhD Student", start_date="2019"), put_code=42)
    assert_valid(document)
    root = etree.fromstring(document)
    assert root.get("put-code") == "42"
    disambiguated = root.find("c:organization/c:disambiguated-organization", NS)
    assert disambiguated.findtext("c:disambiguated-organization-identifier", namespaces=NS) == (
        "https://ror.org/01q3tbs38"
    )
    assert disambiguated.findtext("c:disambiguation-source", namespaces=NS) == "ROR"


def test_open_ended_affiliation_has_no_end_date_nor_empty_fields():
    document = build_affiliation(
        "employment", Affiliation(ORG, department_name=" ", role_title="Dean", start_date=date(2018, 1, 7))
    )
    assert_valid(document)
    root = etree.fromstring(document)
    assert root.find("c:end-date", NS) is None and root.find("c:department-name", NS) is None
    assert date_of(root, "c:start-date") == ("2018", "01", "07")
    assert root.get("put-code") is None


def test_affiliation_dates_may_be_partial_or_datetimes():
    affiliation = Affiliation(ORG, role_title="Dean", start_date="2018-02", end_date=datetime(2019, 2, 3, 10, 0))
    root = etree.fromstring(build_affiliation("employment", affiliation))
    assert date_of(root, "c:start-date") == ("2018", "02", None)
    assert date_of(root, "c:end-date") == ("2019", "02", "03")


@pytest.mark.parametrize(
    ("affiliation", "message"),
    [
        (Affiliation(ORG, start_date="2021-02-30"), "not a real date"),
        (Affiliation(ORG, start_date="soon"), "not a real date"),
        (Affiliation(ORG, start_date="2020-05", end_date="2019"), "before the start"),
        (Affiliation(Organization("U", "", "SA", ringgold_id="1")), "city"),
        (Affiliation(Organization("U", "C", "Saudi", ringgold_id="1")), "country"),
        (Affiliation(Organization("U", "C", "SA")), "ROR or Ringgold"),
    ],
)
def test_affiliations_orcid_would_refuse_are_refused_here(affiliation, message):
    with pytest.raises(DocumentError, match=message):
        build_affiliation("employment", affiliation)


def test_end_in_the_same_partial_period_as_the_start_is_accepted():
    root = etree.fromstring(
        build_affiliation("education", Affiliation(ORG, start_date="2020-05-10", end_date="2020-05"))
    )
    assert date_of(root, "c:end-date") == ("2020", "05", None)


def test_unknown_affiliation_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="kind"):
        build_affiliation("membership", Affiliation(ORG))  # type: ignore[arg-type]


def test_organization_from_settings():
    settings = SimpleNamespace(
        INSTITUTION_NAME="Test University",
        INSTITUTION_CITY="Thuwal",
        INSTITUTION_COUNTRY="SA",
        INSTITUTION_RINGGOLD_ID="127355",
        INSTITUTION_ROR_ID="",
    )
    assert Organization.from_settings(settings) == ORG


# --------------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2019-03-05", (2019, 3, 5)),
        (date(2020, 2, 29), (2020, 2, 29)),
        ("2019-02-29", (2019, 2, None)),
        ("", None),
        (None, None),
        ("2101", None),
    ],
)
def test_parse_partial_date(value, expected):
    assert parse_partial_date(value) == expected


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("https://api.sandbox.orcid.org/v3.0/0000-0002-9227-8514/work/733536", "733536"),
        ("http://127.0.0.1:5000/v3.0/0000-0002-9227-8514/employment/12/", "12"),
        ("/v3.0/0000-0002-9227-8514/work/99?x=1", "99"),
        ("https://api.orcid.org/v3.0/0000-0002-9227-8514/work", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_put_code_takes_the_numeric_last_segment(location, expected):
    assert parse_put_code(location) == expected


def test_put_code_from_conflict_messages_old_and_new():
    new = (
        "409 Conflict: You have already added this activity (matched by external identifiers), please see element "
        "with put-code 1234567. If you are trying to edit the item, please use PUT instead of POST."
    )
    old = "409 Conflict: You have already added this activity (matched by external identifiers.) If you are trying..."
    assert put_code_from_conflict(new) == "1234567"
    assert put_code_from_conflict(old) is None
    assert put_code_from_conflict(None) is None


def test_same_content_ignores_layout_prefixes_and_put_code():
    document = build_work(FULL_ITEM, FIELDS, WORK_TYPE_TABLE)
    compact = etree.tostring(etree.fromstring(document, etree.XMLParser(remove_blank_text=True)))
    update = build_work(FULL_ITEM, FIELDS, WORK_TYPE_TABLE, put_code=5)
    other_prefixes = document.replace(b"common:", b"c:").replace(b"xmlns:common", b"xmlns:c")
    assert same_content(document, compact) and same_content(document, update)
    assert same_content(document, other_prefixes) and same_content(document.decode(), document)
    assert canonical(document) == canonical(compact)
    assert canonical(update, ignore_put_code=False) != canonical(document, ignore_put_code=False)


def test_changed_content_or_unreadable_previous_document_differs():
    document = build_work(FULL_ITEM, FIELDS, WORK_TYPE_TABLE)
    changed = build_work({**FULL_ITEM, "dc.date.issued": ["2019-03"]}, FIELDS, WORK_TYPE_TABLE)
    assert not same_content(document, changed)
    assert not same_content(document, "<not xml")
    assert not same_content(document, None) and not same_content("", document)


def test_self_external_ids_of_a_built_work():
    assert self_external_ids(build_work(FULL_ITEM, FIELDS, WORK_TYPE_TABLE)) == [
        ("doi", "10.1016/j.ijheatmasstransfer.2019.01.001"),
        ("handle", "10754/1"),
        ("pmid", "31234567"),
        ("arxiv", "1901.00001"),
    ]


WORKS_SUMMARY = """<?xml version="1.0" encoding="UTF-8"?>
<activities:works xmlns:activities="http://www.orcid.org/ns/activities" xmlns:common="http://www.orcid.org/ns/common"
    xmlns:work="http://www.orcid.org/ns/work" path="/0000-0002-1825-0097/works">
  <activities:group>
    <common:external-ids/>
    <work:work-summary put-code="11" path="/0000-0002-1825-0097/work/11" visibility="public">
      <common:source>
        <common:source-orcid><common:uri>https://orcid.org/0000-0002-1825-0097</common:uri>
        <common:path>0000-0002-1825-0097</common:path><common:host>orcid.org</common:host></common:source-orcid>
        <common:source-name>Josiah Carberry</common:source-name>
      </common:source>
      <work:title><common:title>Mine, added by hand</common:title></work:title>
      <common:external-ids><common:external-id><common:external-id-type>doi</common:external-id-type>
        <common:external-id-value>10.1/A</common:external-id-value>
        <common:external-id-relationship>self</common:external-id-relationship></common:external-id>
      </common:external-ids>
      <work:type>journal-article</work:type>
    </work:work-summary>
    <work:work-summary put-code="12" path="/0000-0002-1825-0097/work/12" visibility="public">
      <common:source>
        <common:source-client-id><common:uri>https://orcid.org/client/APP-0123456789ABCDEF</common:uri>
        <common:path>APP-0123456789ABCDEF</common:path><common:host>orcid.org</common:host></common:source-client-id>
        <common:source-name>IOI</common:source-name>
      </common:source>
      <work:title><common:title>Ours</common:title></work:title>
      <common:external-ids>
        <common:external-id><common:external-id-type>doi</common:external-id-type>
          <common:external-id-value>10.1/a</common:external-id-value>
          <common:external-id-relationship>self</common:external-id-relationship></common:external-id>
        <common:external-id><common:external-id-type>issn</common:external-id-type>
          <common:external-id-value>1234-5678</common:external-id-value>
          <common:external-id-relationship>part-of</common:external-id-relationship></common:external-id>
      </common:external-ids>
      <work:type>journal-article</work:type>
    </work:work-summary>
  </activities:group>
</activities:works>
"""


def test_works_summary_gives_put_codes_sources_and_self_ids():
    if SCHEMAS:
        assert validate(WORKS_SUMMARY) == []
    assert parse_works_summary(WORKS_SUMMARY) == [
        WorkSummary("11", None, (("doi", "10.1/A"),)),
        WorkSummary("12", "APP-0123456789ABCDEF", (("doi", "10.1/a"),)),
    ]


def test_conflict_fallback_matches_our_own_work_by_self_id():
    summaries = parse_works_summary(WORKS_SUMMARY.encode())
    ours = [("handle", "10754/1"), ("doi", "10.1/A")]
    assert find_existing_put_code(summaries, ours) == "11"
    assert find_existing_put_code(summaries, ours, client_id="APP-0123456789ABCDEF") == "12"
    assert find_existing_put_code(summaries, [("issn", "1234-5678")]) is None  # part-of ids never match
    assert find_existing_put_code(summaries, ours, client_id="APP-FFFFFFFFFFFFFFFF") is None


@pytest.mark.skipif(not SCHEMAS, reason="shared/orcid-schema is absent")
def test_validate_reports_schema_errors_and_unknown_documents():
    document = build_work(FULL_ITEM, FIELDS, WORK_TYPE_TABLE).replace(b"<common:month>03", b"<common:month>13")
    assert any("month" in error for error in validate(document))
    assert validate(b"<x/>") == ["no ORCID 3.0 schema for root element x"]
    assert validate(b"<x") and validate(b"<x")[0].startswith("not well-formed")


def test_schema_dir_is_overridable(monkeypatch, tmp_path):
    monkeypatch.setenv("IOI_ORCID_SCHEMA_DIR", str(tmp_path))
    assert schema_dir() == tmp_path and not schemas_available()
    with pytest.raises(FileNotFoundError):
        validate(build_work(FULL_ITEM, FIELDS, WORK_TYPE_TABLE))
