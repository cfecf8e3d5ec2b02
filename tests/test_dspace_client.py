"""The DSpace 5/6 REST client against the simulator over real HTTP."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from ioi.clients.dspace import (
    DSpaceAuthError,
    DSpaceBadResponse,
    DSpaceClient,
    DSpaceNotFound,
    DSpaceUnavailable,
    Pacer,
)
from ioi.sandbox.dspace import DSpaceSimulator, MetadataValue
from ioi.sandbox.server import BackgroundServer

ORCID = "0000-0002-1825-0097"
PASSWORD = "s3cret-Pa55"


@pytest.fixture(scope="module")
def server():
    sim = DSpaceSimulator()
    with BackgroundServer(sim) as served:
        yield sim, served.url


@pytest.fixture(params=[5, 6], ids=["dspace5", "dspace6"])
def sim(request, server):
    simulator, _ = server
    simulator.reset(request.param, users={"admin@example.edu": PASSWORD})
    jim = simulator.add_authority("Babson, Jim", ORCID)
    simulator.add_item(
        "10754/1",
        [
            ("dc.title", "Corals", "en_US"),
            MetadataValue("dc.contributor.author", "Babson, Jim", None, jim.key, 600),
            ("dc.contributor.author", "Plain, Pat"),
            ("dc.description.provenance", "Made available", "en"),
        ],
        last_modified=datetime(2019, 6, 10, 13, 30, 45, 280000, tzinfo=UTC),
    )
    return simulator


@pytest.fixture
def client(sim, server):
    with DSpaceClient(server[1] + "/rest/", "admin@example.edu", PASSWORD, sim.version, backoff=0.01,
                      timeout=(2.0, 0.5)) as dspace:  # fmt: skip
        yield dspace


def test_each_version_logs_in_its_own_way_and_reads_as_an_admin(client, sim):
    client.login()
    assert client.status()["authenticated"] is True
    item = client.get_item_by_handle("10754/1")
    stored = sim.item("10754/1")
    assert item.item_id == (str(stored.id) if sim.version == 5 else stored.uuid)
    assert item.last_modified == "2019-06-10 13:30:45.28"
    values = [e["value"] for e in item.metadata]
    assert f"Babson, Jim::{stored.metadata[1].authority}::{ORCID}" in values
    assert "Made available" in values  # hidden provenance: only an admin sees it
    assert item.raw.startswith("{")
    login = [c for c in sim.calls() if c.path == "/rest/login"]
    assert len(login) == 1


def test_wrong_credentials_raise_an_auth_error_without_the_password(sim, server, caplog):
    caplog.set_level(logging.DEBUG)
    bad = DSpaceClient(server[1] + "/rest", "admin@example.edu", "wrong-" + PASSWORD, sim.version, backoff=0)
    with pytest.raises(DSpaceAuthError) as raised:
        bad.login()
    assert raised.value.status == (403 if sim.version == 5 else 401)
    assert PASSWORD not in str(raised.value) and PASSWORD not in caplog.text


def test_the_password_and_session_never_appear_in_the_log(client, caplog):
    caplog.set_level(logging.DEBUG)
    client.login()
    client.get_item_by_handle("10754/1")
    secret = next(iter(client._auth.values())).split("=")[-1]
    assert PASSWORD not in caplog.text and secret not in caplog.text
    assert "GET" in caplog.text and "/rest/handle/10754/1" in caplog.text


def test_an_unknown_item_id_is_not_found_and_an_unknown_handle_is_a_server_error(client):
    with pytest.raises(DSpaceNotFound):
        client.get_item_metadata("999999" if client.version == "5" else "00000000-0000-0000-0000-000000000000")
    with pytest.raises(DSpaceUnavailable) as raised:
        client.get_item_by_handle("10754/404")  # DSpace 5/6 answer 500, not 404
    assert raised.value.status == 500


def test_server_errors_and_timeouts_are_retried_with_backoff(client, sim):
    waits = []
    client._sleep = waits.append
    sim.fail_next(2, 503, path="/rest/handle")
    sim.timeout_next(1, seconds=1.0, path="/rest/handle")
    assert client.get_item_by_handle("10754/1").handle == "10754/1"
    assert waits == [0.01, 0.02, 0.04]


def test_retry_after_is_honoured(client, sim):
    waits = []
    client._sleep = waits.append
    sim.fail_next(1, 503, path="/rest/handle", retry_after=2)
    client.get_item_by_handle("10754/1")
    assert waits == [2.0]


def test_retries_run_out(client, sim):
    sim.fail_next(10, 500, path="/rest/handle")
    with pytest.raises(DSpaceUnavailable):
        client.get_item_by_handle("10754/1")
    handle_calls = [c for c in sim.calls() if c.path.startswith("/rest/handle") and c.status == 500]
    assert len(handle_calls) == client.max_attempts


def test_a_cut_json_answer_is_retried_then_reported_as_a_bad_response(client, sim):
    sim.truncate_next(1, path="/rest/handle")
    assert client.get_item_by_handle("10754/1").metadata
    sim.truncate_next(10, path="/rest/handle")
    with pytest.raises(DSpaceBadResponse):
        client.get_item_by_handle("10754/1")


def test_put_replaces_only_the_keys_sent(client, sim):
    client.login()
    item = sim.item("10754/1")
    item_id = item.id if sim.version == 5 else item.uuid
    client.put_item_metadata(str(item_id), [{"key": "dc.title", "value": "Reefs", "language": "en_US"}])
    assert sim.values("10754/1", "dc.title") == ["Reefs"]
    assert sim.values("10754/1", "dc.contributor.author") == ["Babson, Jim", "Plain, Pat"]
    assert [e["key"] for e in client.get_item_metadata(str(item_id))].count("dc.contributor.author") == 2


def test_a_lost_session_is_renewed_on_a_write(client, sim):
    client.login()
    item = sim.item("10754/1")
    item_id = str(item.id if sim.version == 5 else item.uuid)
    sim.invalidate_sessions()
    client.put_item_metadata(item_id, [{"key": "dc.title", "value": "Reefs", "language": None}])
    assert [c.status for c in sim.calls() if c.method == "PUT"] == [401, 200]
    sim.invalidate_sessions()
    with pytest.raises(DSpaceAuthError):
        client.put_item_metadata(item_id, [{"key": "dc.title", "value": "X", "language": None}], relogin=False)
    assert sim.values("10754/1", "dc.title") == ["Reefs"]


def test_an_authority_rename_is_not_retried_once_sent(client, sim):
    key = sim.item("10754/1").metadata[1].authority
    sim.fail_next(1, 500, method="PUT")
    with pytest.raises(DSpaceUnavailable):
        client.rename_authority(key, "Babson, James")
    assert len([c for c in sim.calls() if c.method == "PUT"]) == 1
    client.rename_authority(key, "Babson, James")
    assert sim.values("10754/1", "dc.contributor.author")[0] == "Babson, James"


def test_dspace_7_is_refused_by_this_client():
    with pytest.raises(ValueError):
        DSpaceClient("http://127.0.0.1:1/server/api", "a@b.c", "x", "7")


def test_the_pacer_spaces_calls():
    slept = []
    pacer = Pacer(0.5, slept.append)
    pacer.wait()
    pacer.wait()
    pacer.wait()
    assert len(slept) == 2 and slept[1] > slept[0] > 0.4
    Pacer(0, slept.append).wait()
    assert len(slept) == 2
