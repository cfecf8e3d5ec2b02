"""The OAI-PMH client against the DSpace simulator's XOAI endpoint."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ioi.clients.oai import (
    OaiBadArgument,
    OaiBadResponse,
    OaiBadResumptionToken,
    OaiClient,
    OaiIdDoesNotExist,
    OaiUnavailable,
    oai_datetime,
    parse_oai_datetime,
)
from ioi.sandbox.dspace import DSpaceSimulator
from ioi.sandbox.server import BackgroundServer


@pytest.fixture(scope="module")
def server():
    sim = DSpaceSimulator()
    with BackgroundServer(sim) as served:
        yield sim, served.url


@pytest.fixture
def sim(server):
    simulator, _ = server
    simulator.reset(6, oai_page_size=10)
    for number in range(1, 26):
        simulator.add_item(f"10754/{number}", [("dc.title", f"Item {number}")],
                           last_modified=datetime(2020, 1, number, 12, tzinfo=UTC))  # fmt: skip
    return simulator


@pytest.fixture
def oai(server):
    client = OaiClient(server[1] + "/oai/request", backoff=0.01, timeout=(2.0, 1.0))
    yield client
    client.close()


def test_list_identifiers_follows_dspace_resumption_tokens(oai, sim):
    pages = list(oai.list_identifiers("xoai"))
    assert [len(p.headers) for p in pages] == [10, 10, 5]
    assert [p.cursor for p in pages] == [0, 1, 2]  # DSpace's cursor is the page index
    assert pages[0].complete_list_size == 25 and pages[0].token == "xoai////10"
    assert pages[-1].token is None
    assert [h.handle for p in pages for h in p.headers] == [f"10754/{n}" for n in range(1, 26)]
    assert pages[0].headers[0].datestamp == "2020-01-01T12:00:00Z"


def test_from_is_inclusive_and_deleted_headers_are_flagged(oai, sim):
    sim.withdraw_item("10754/3")
    sim.set_last_modified("10754/3", datetime(2020, 1, 24, tzinfo=UTC))
    pages = list(oai.list_identifiers("xoai", "2020-01-24T00:00:00Z"))
    headers = [h for p in pages for h in p.headers]
    assert [(h.handle, h.deleted) for h in headers] == [("10754/3", True), ("10754/24", False), ("10754/25", False)]


def test_no_records_match_is_an_empty_list(oai, sim):
    page = oai.list_identifiers_page("xoai", "2099-01-01T00:00:00Z")
    assert page.headers == [] and page.token is None


def test_oai_error_codes_become_typed_errors(oai, sim):
    with pytest.raises(OaiBadResumptionToken):
        oai.list_identifiers_page(token="garbage")
    with pytest.raises(OaiBadArgument):
        oai.list_identifiers_page("xoai", "last tuesday")
    with pytest.raises(OaiIdDoesNotExist):
        oai.get_record_header("oai:repository.example.edu:10754/999")


def test_get_record_gives_the_header(oai, sim):
    sim.delete_item("10754/7")
    assert oai.get_record_header("oai:repository.example.edu:10754/2").deleted is False
    assert oai.get_record_header("oai:repository.example.edu:10754/7").deleted is True


def test_cut_xml_is_retried_then_reported_clearly(oai, sim):
    sim.truncate_next(1, path="verb=ListIdentifiers")
    assert len(oai.list_identifiers_page("xoai").headers) == 10
    sim.truncate_next(10, path="verb=ListIdentifiers")
    with pytest.raises(OaiBadResponse) as raised:
        oai.list_identifiers_page("xoai")
    assert "malformed or cut XML" in str(raised.value)


def test_http_errors_are_retried_then_reported(oai, sim):
    sim.fail_next(1, 503, path="verb=ListIdentifiers")
    assert len(oai.list_identifiers_page("xoai").headers) == 10
    sim.fail_next(10, 500, path="verb=ListIdentifiers")
    with pytest.raises(OaiUnavailable):
        oai.list_identifiers_page("xoai")


def test_oai_dates_are_utc_seconds():
    assert oai_datetime(datetime(2019, 6, 10, 13, 30, 45, 999000)) == "2019-06-10T13:30:45Z"
    assert parse_oai_datetime("2019-06-10") == datetime(2019, 6, 10, tzinfo=UTC)
    assert parse_oai_datetime("2019-06-10T13:30:45Z") == datetime(2019, 6, 10, 13, 30, 45, tzinfo=UTC)
