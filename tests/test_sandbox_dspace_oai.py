"""The DSpace simulator's OAI-PMH endpoint (XOAI behaviour of DSpace 5/6), over real HTTP."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
import requests

from ioi.sandbox.dspace import DSpaceSimulator
from ioi.sandbox.repository_generator import generate_repository
from ioi.sandbox.server import BackgroundServer

NS = {"oai": "http://www.openarchives.org/OAI/2.0/", "x": "http://www.lyncode.com/xoai"}
NS["dc"] = "http://purl.org/dc/elements/1.1/"
HOST = "repository.kaust.edu.sa"


@pytest.fixture(scope="module")
def shared():
    """One server for the module; each test resets the simulator behind it."""
    sim = DSpaceSimulator()
    with BackgroundServer(sim) as server:
        yield sim, server.url + "/oai/request"


@pytest.fixture(params=[5, 6], ids=["dspace5", "dspace6"])
def oai(request, shared):
    """Seven generated items dated 2020-01-0N 12:00:00 UTC (N = 1..7), pages of 3."""
    sim, url = shared
    sim.reset(request.param, oai_host=HOST, oai_page_size=3, items=generate_repository(7, seed=3))
    for number, item in enumerate(sim.items(), start=1):
        sim.set_last_modified(item.handle, datetime(2020, 1, number, 12, 0, 0, 250000, tzinfo=UTC))
    return sim, url


def get(url: str, **params) -> ET.Element:
    response = requests.get(url, params=params, timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/xml;charset=UTF-8"
    return ET.fromstring(response.content)


def error(root: ET.Element) -> str:
    return root.find("oai:error", NS).get("code")


def identifiers(root: ET.Element) -> list[str]:
    return [e.text for e in root.findall(".//oai:header/oai:identifier", NS)]


def token(root: ET.Element) -> ET.Element | None:
    return root.find(".//oai:resumptionToken", NS)


def test_list_identifiers_pages_with_dspace_resumption_tokens(oai):
    sim, url = oai
    first = get(url, verb="ListIdentifiers", metadataPrefix="xoai")
    request = first.find("oai:request", NS)
    assert request.attrib == {"verb": "ListIdentifiers", "metadataPrefix": "xoai"} and request.text == url
    assert len(identifiers(first)) == 3
    assert token(first).attrib == {"completeListSize": "7", "cursor": "0"} and token(first).text == "xoai////3"
    second = get(url, verb="ListIdentifiers", resumptionToken="xoai////3")
    assert second.find("oai:request", NS).attrib == {"verb": "ListIdentifiers", "resumptionToken": "xoai////3"}
    assert token(second).attrib == {"completeListSize": "7", "cursor": "1"} and token(second).text == "xoai////6"
    last = get(url, verb="ListIdentifiers", resumptionToken="xoai////6")
    assert token(last).attrib == {"completeListSize": "7", "cursor": "2"} and not token(last).text
    handles = [i.handle for i in sim.items()]
    assert identifiers(first) + identifiers(second) + identifiers(last) == [f"oai:{HOST}:{h}" for h in handles]


def test_header_shape_and_datestamp_in_utc_seconds(oai):
    sim, url = oai
    header = get(url, verb="ListIdentifiers", metadataPrefix="xoai").find(".//oai:header", NS)
    assert [child.tag.split("}")[1] for child in header] == ["identifier", "datestamp", "setSpec", "setSpec"]
    assert header.find("oai:datestamp", NS).text == "2020-01-01T12:00:00Z"
    specs = [s.text for s in header.findall("oai:setSpec", NS)]
    assert specs[0] == "com_10754_1" and specs[1].startswith("col_10754_")


def test_a_single_page_answer_has_no_resumption_token(oai):
    _, url = oai
    root = get(url, verb="ListIdentifiers", metadataPrefix="xoai", **{"from": "2020-01-06"})
    assert len(identifiers(root)) == 2 and token(root) is None


def test_from_and_until_are_inclusive_and_second_granular(oai):
    _, url = oai
    root = get(url, verb="ListIdentifiers", metadataPrefix="xoai", until="2020-01-02T12:00:00Z")
    assert len(identifiers(root)) == 2
    root = get(url, verb="ListIdentifiers", metadataPrefix="xoai", **{"from": "2020-01-02T12:00:01Z"})
    assert token(root).get("completeListSize") == "5"
    root = get(url, verb="ListIdentifiers", metadataPrefix="xoai", **{"from": "2020-01-02", "until": "2020-01-04"})
    assert len(identifiers(root)) == 2  # a day-only `until` means that day at 00:00:00Z
    assert root.find("oai:request", NS).get("from") == "2020-01-02T00:00:00Z"


def test_from_is_parsed_leniently_and_carried_in_the_token(oai):
    _, url = oai
    root = get(url, verb="ListIdentifiers", metadataPrefix="xoai", **{"from": "2020-01-02 13:30:45.0"})
    assert len(identifiers(root)) == 3 and token(root).text == "xoai/2020-01-02T00:00:00Z///3"
    following = get(url, verb="ListIdentifiers", resumptionToken=token(root).text)
    assert len(identifiers(following)) == 3 and token(following).get("completeListSize") == "6"


def test_set_limits_the_list(oai):
    sim, url = oai
    spec = sim.items()[0].set_specs[1]
    root = get(url, verb="ListIdentifiers", metadataPrefix="xoai", set=spec)
    expected = [f"oai:{HOST}:{i.handle}" for i in sim.items() if spec in i.set_specs]
    assert identifiers(root)[:3] == expected[:3]


def test_withdrawn_and_expunged_items_are_deleted_headers(oai):
    sim, url = oai
    handles = [i.handle for i in sim.items()]
    sim.withdraw_item(handles[0])
    sim.delete_item(handles[1])
    root = get(url, verb="ListIdentifiers", metadataPrefix="xoai", **{"from": "2024-01-01"})
    deleted = root.findall(".//oai:header[@status='deleted']", NS)
    assert sorted(h.find("oai:identifier", NS).text for h in deleted) == [f"oai:{HOST}:{h}" for h in handles[:2]]
    record = get(url, verb="GetRecord", metadataPrefix="xoai", identifier=f"oai:{HOST}:{handles[0]}")
    assert record.find(".//oai:header", NS).get("status") == "deleted"
    assert record.find(".//oai:record/oai:metadata", NS) is None


def test_get_record_returns_the_xoai_document(oai):
    sim, url = oai
    item = sim.items()[0]
    root = get(url, verb="GetRecord", metadataPrefix="xoai", identifier=f"oai:{HOST}:{item.handle}")
    document = root.find(".//oai:record/oai:metadata/x:metadata", NS)
    dc = document.find("x:element[@name='dc']", NS)
    title_lang = item.metadata[[v.key for v in item.metadata].index("dc.title")].language or "none"
    title = dc.find(f"x:element[@name='title']/x:element[@name='{title_lang}']/x:field[@name='value']", NS)
    assert title.text == item.name
    authors = dc.find("x:element[@name='contributor']/x:element[@name='author']", NS)
    fields = [(f.get("name"), f.text) for f in authors.iter(f"{{{NS['x']}}}field")]
    linked = [v for v in item.metadata if v.key == "dc.contributor.author" and v.authority]
    assert ("authority", linked[0].authority) in fields and ("confidence", "600") in fields
    others = {f.get("name"): f.text for f in document.find("x:element[@name='others']", NS)}
    assert others == {
        "handle": item.handle,
        "identifier": f"oai:{HOST}:{item.handle}",
        "lastModifyDate": "2020-01-01 12:00:00.25",
    }
    repository = document.find("x:element[@name='repository']", NS)
    assert repository.find("x:field[@name='name']", NS).text
    assert document.find("x:element[@name='bundles']/x:element[@name='bundle']", NS) is not None


def test_get_record_ignores_the_identifier_prefix(oai):
    sim, url = oai
    handle = sim.items()[1].handle
    root = get(url, verb="GetRecord", metadataPrefix="xoai", identifier=f"oai:elsewhere.org:{handle}")
    assert root.find(".//oai:header/oai:identifier", NS).text == f"oai:{HOST}:{handle}"


def test_oai_dc_maps_authors_to_creator(oai):
    sim, url = oai
    item = sim.items()[0]
    root = get(url, verb="GetRecord", metadataPrefix="oai_dc", identifier=f"oai:{HOST}:{item.handle}")
    creators = [e.text for e in root.findall(".//dc:creator", NS)]
    assert creators == item.values("dc.contributor.author")


def test_list_records_pages_like_list_identifiers(oai):
    _, url = oai
    root = get(url, verb="ListRecords", metadataPrefix="xoai")
    assert len(root.findall(".//oai:record", NS)) == 3 and token(root).text == "xoai////3"


def test_identify_and_list_metadata_formats(oai):
    _, url = oai
    identify = get(url, verb="Identify")
    assert identify.find(".//oai:granularity", NS).text == "YYYY-MM-DDThh:mm:ssZ"
    assert identify.find(".//oai:deletedRecord", NS).text == "transient"
    formats = get(url, verb="ListMetadataFormats")
    assert [e.text for e in formats.findall(".//oai:metadataPrefix", NS)] == ["xoai", "oai_dc"]
    assert get(url, verb="ListSets").find(".//oai:setSpec", NS).text == "col_10754_10"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "badVerb"),
        ({"verb": "ListThings"}, "badVerb"),
        ({"verb": "ListIdentifiers"}, "badArgument"),
        ({"verb": "ListIdentifiers", "metadataPrefix": "xoai", "from": "yesterday"}, "badArgument"),
        (
            {
                "verb": "ListIdentifiers",
                "metadataPrefix": "xoai",
                "from": "2020-01-01",
                "until": "2020-01-02T00:00:00Z",
            },
            "badArgument",
        ),
        ({"verb": "ListIdentifiers", "metadataPrefix": "xoai", "resumptionToken": "xoai////3"}, "badArgument"),
        ({"verb": "ListIdentifiers", "resumptionToken": "garbage"}, "badResumptionToken"),
        ({"verb": "ListIdentifiers", "resumptionToken": "xoai////three"}, "badResumptionToken"),
        ({"verb": "GetRecord", "metadataPrefix": "xoai"}, "badArgument"),
    ],
)
def test_argument_errors_leave_the_request_element_bare(oai, params, code):
    _, url = oai
    root = get(url, **params)
    assert error(root) == code
    assert root.find("oai:request", NS).attrib == {}
    assert root.find("oai:ListIdentifiers", NS) is None


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"verb": "ListIdentifiers", "metadataPrefix": "marcxml"}, "cannotDisseminateFormat"),
        (
            {"verb": "GetRecord", "metadataPrefix": "marcxml", "identifier": "oai:x:10754/600001"},
            "cannotDisseminateFormat",
        ),
        ({"verb": "GetRecord", "metadataPrefix": "xoai", "identifier": "oai:x:10754/1"}, "idDoesNotExist"),
        ({"verb": "GetRecord", "metadataPrefix": "xoai", "identifier": "10754/600001"}, "idDoesNotExist"),
        ({"verb": "ListIdentifiers", "metadataPrefix": "xoai", "from": "2030-01-01"}, "noRecordsMatch"),
        ({"verb": "ListIdentifiers", "resumptionToken": "xoai////300"}, "noRecordsMatch"),
    ],
)
def test_handler_errors_echo_the_arguments(oai, params, code):
    _, url = oai
    root = get(url, **params)
    assert error(root) == code
    assert root.find("oai:request", NS).get("verb") == params["verb"]


def test_a_rest_edit_shows_up_in_oai_with_its_new_datestamp(oai):
    sim, url = oai
    handle = sim.items()[2].handle
    session = requests.Session()
    if sim.version == 5:
        login = session.post(
            url.replace("/oai/request", "/rest/login"), json={"email": "admin@example.edu", "password": "admin"}
        )
        session.headers["rest-dspace-token"] = login.text
    else:
        session.post(
            url.replace("/oai/request", "/rest/login"), data={"email": "admin@example.edu", "password": "admin"}
        )
    item = sim.item(handle)
    ident = item.id if sim.version == 5 else item.uuid
    rest = url.replace("/oai/request", f"/rest/items/{ident}/metadata")
    assert session.put(rest, json=[{"key": "dc.title", "value": "Edited", "language": None}], timeout=5).ok
    root = get(url, verb="ListIdentifiers", metadataPrefix="xoai", **{"from": "2024-01-01"})
    assert identifiers(root) == [f"oai:{HOST}:{handle}"]
    stamp = root.find(".//oai:datestamp", NS).text
    assert stamp == sim.item(handle).last_modified.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_without_live_oai_edits_appear_only_after_an_import(shared):
    sim, url = shared
    sim.reset(5, oai_live=False, items=generate_repository(3, seed=4))
    assert error(get(url, verb="ListIdentifiers", metadataPrefix="xoai")) == "noRecordsMatch"
    sim.oai_import()
    assert len(identifiers(get(url, verb="ListIdentifiers", metadataPrefix="xoai"))) == 3
    sim.set_values("10754/600002", "dc.title", ["Edited"])
    assert error(get(url, verb="ListIdentifiers", metadataPrefix="xoai", **{"from": "2025-01-01"})) == "noRecordsMatch"
    sim.oai_import()
    root = get(url, verb="ListIdentifiers", metadataPrefix="xoai", **{"from": "2025-01-01"})
    assert identifiers(root) == ["oai:repository.example.edu:10754/600002"]
