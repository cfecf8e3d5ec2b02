"""The DSpace 5/6 simulator's legacy REST API, Atmire ORCID patch, faults and sessions, over real HTTP."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests

from ioi.sandbox.dspace import DSpaceSimulator, MetadataValue, person_authority
from ioi.sandbox.server import BackgroundServer

ADMIN = {"email": "admin@example.edu", "password": "admin"}
ORCID = "0000-0002-1825-0097"
OTHER_ORCID = "0000-0001-5109-3700"
ITEM_KEYS_5 = ["id", "name", "handle", "type", "link", "expand", "lastModified", "parentCollection"]
ITEM_KEYS_6 = ["uuid", *ITEM_KEYS_5[1:]]
ITEM_KEYS_TAIL = ["parentCollectionList", "parentCommunityList", "metadata", "bitstreams", "archived", "withdrawn"]


@dataclass
class Served:
    sim: DSpaceSimulator
    url: str

    @property
    def rest(self) -> str:
        return self.url + "/rest"

    def login(self, email: str = ADMIN["email"], password: str = ADMIN["password"]) -> requests.Session:
        """A session authenticated the way IOI does it for this DSpace version."""
        session = requests.Session()
        session.headers["Accept"] = "application/json"
        if self.sim.version == 5:
            response = session.post(self.rest + "/login", json={"email": email, "password": password}, timeout=5)
            assert response.status_code == 200
            session.headers["rest-dspace-token"] = response.text
        else:
            response = session.post(self.rest + "/login", data={"email": email, "password": password}, timeout=5)
            assert response.status_code == 200
            session.cookies.clear()  # IOI sends the Cookie header itself
            session.headers["Cookie"] = "JSESSIONID=" + response.cookies["JSESSIONID"]
        return session

    def item_url(self, handle: str) -> str:
        item = self.sim.item(handle)
        return f"{self.rest}/items/{item.id if self.sim.version == 5 else item.uuid}"


def seed(sim: DSpaceSimulator) -> None:
    """Two items sharing an ORCID author, with values in several fields."""
    jim = sim.add_authority("Babson, Jim", ORCID)
    ann = sim.add_authority("Lee, Ann")
    authors = [
        MetadataValue("dc.contributor.author", "Babson, Jim", None, jim.key, 600),
        MetadataValue("dc.contributor.author", "Lee, Ann", None, ann.key, 600),
        MetadataValue("dc.contributor.author", "Plain, Pat"),
    ]
    for number, title in ((1, "First item"), (2, "Second item")):
        sim.add_item(
            f"10754/{number}",
            [
                ("dc.title", title, "en_US"),
                *authors,
                ("dc.date.issued", "2019-06"),
                ("dc.identifier.uri", f"http://hdl.handle.net/10754/{number}"),
                ("dc.description.provenance", "Made available in DSpace", "en"),
                ("dc.subject", "Corals", "en_US"),
                ("dc.subject", "Reefs", "en_US"),
            ],
            last_modified=datetime(2019, 6, 10, 13, 30, 45, 280000, tzinfo=UTC),
        )


@pytest.fixture(scope="module")
def shared():
    """One server for the module; each test resets the simulator behind it."""
    sim = DSpaceSimulator()
    with BackgroundServer(sim) as server:
        yield Served(sim, server.url)


@pytest.fixture
def served(shared):
    """A seeded simulator built with options: `served(version, **options)`."""

    def start(version: int, **options) -> Served:
        shared.sim.reset(version, **options)
        seed(shared.sim)
        return shared

    return start


@pytest.fixture(params=[5, 6], ids=["dspace5", "dspace6"])
def dspace(request, served):
    return served(request.param)


def metadata(dspace: Served, session: requests.Session, handle: str) -> list[dict]:
    response = session.get(dspace.item_url(handle) + "/metadata", timeout=5)
    assert response.status_code == 200
    return response.json()


def values(entries: list[dict], key: str) -> list[str]:
    return [entry["value"] for entry in entries if entry["key"] == key]


# ---------------------------------------------------------------- authentication


def test_dspace5_login_returns_the_same_bare_token_for_the_same_user(served):
    dspace = served(5)
    first = requests.post(dspace.rest + "/login", json=ADMIN, timeout=5)
    second = requests.post(dspace.rest + "/login", json=ADMIN, timeout=5)
    assert first.status_code == 200 and first.headers["Content-Type"].startswith("text/plain")
    assert re.fullmatch(r"[0-9a-f-]{36}", first.text)
    assert second.text == first.text


def test_dspace5_login_refuses_bad_credentials_with_403_and_form_bodies_with_415(served):
    dspace = served(5)
    assert requests.post(dspace.rest + "/login", json={**ADMIN, "password": "x"}, timeout=5).status_code == 403
    assert requests.post(dspace.rest + "/login", data=ADMIN, timeout=5).status_code == 415


def test_dspace6_login_sets_a_jsessionid_cookie_on_path_rest(served):
    dspace = served(6)
    response = requests.post(dspace.rest + "/login", data=ADMIN, timeout=5)
    assert response.status_code == 200 and response.text == ""
    cookie = response.headers["Set-Cookie"]
    assert re.match(r"JSESSIONID=[0-9A-F]{32};", cookie) and "Path=/rest" in cookie and "HttpOnly" in cookie


def test_dspace6_cookie_can_be_marked_secure_like_a_real_https_server(served):
    dspace = served(6, secure_cookie=True)
    assert "Secure" in requests.post(dspace.rest + "/login", data=ADMIN, timeout=5).headers["Set-Cookie"]


def test_dspace6_bad_login_is_401_html_with_a_fresh_cookie(served):
    dspace = served(6)
    response = requests.post(dspace.rest + "/login", data={**ADMIN, "password": "x"}, timeout=5)
    assert response.status_code == 401 and "Login failed" in response.text
    assert response.headers["Content-Type"].startswith("text/html") and "JSESSIONID=" in response.headers["Set-Cookie"]
    json_login = requests.post(dspace.rest + "/login", json=ADMIN, timeout=5)
    assert json_login.status_code == 401


def test_dspace6_session_cookie_jar_works_too(served):
    dspace = served(6)
    session = requests.Session()
    session.post(dspace.rest + "/login", data=ADMIN, timeout=5)
    assert session.get(dspace.rest + "/status", timeout=5).json()["authenticated"] is True


def test_status_anonymous_and_logged_in_dspace5(served):
    dspace = served(5)
    anonymous = requests.get(dspace.rest + "/status", timeout=5).json()
    assert anonymous == {"okay": True, "authenticated": False, "email": None, "fullname": None, "token": None}
    session = dspace.login()
    status = session.get(dspace.rest + "/status", timeout=5).json()
    assert status == {
        "okay": True,
        "authenticated": True,
        "email": "admin@example.edu",
        "fullname": "Repository Admin",
        "token": session.headers["rest-dspace-token"],
    }


def test_status_anonymous_and_logged_in_dspace6(served):
    dspace = served(6)
    anonymous = requests.get(dspace.rest + "/status", timeout=5).json()
    assert anonymous == {
        "okay": True,
        "authenticated": False,
        "email": None,
        "fullname": None,
        "sourceVersion": "6.3",
        "apiVersion": "6",
    }
    status = dspace.login().get(dspace.rest + "/status", timeout=5).json()
    assert list(status) == ["okay", "authenticated", "email", "fullname", "sourceVersion", "apiVersion"]
    assert status["authenticated"] is True and status["email"] == "admin@example.edu"


def test_dspace5_logout_forgets_the_token_and_a_second_logout_is_400(served):
    dspace = served(5)
    session = dspace.login()
    assert session.post(dspace.rest + "/logout", timeout=5).status_code == 200
    assert session.get(dspace.rest + "/status", timeout=5).json()["authenticated"] is False
    assert session.post(dspace.rest + "/logout", timeout=5).status_code == 400
    assert requests.post(dspace.rest + "/logout", timeout=5).status_code == 400


def test_dspace6_logout_ends_the_session(served):
    dspace = served(6)
    session = dspace.login()
    assert session.post(dspace.rest + "/logout", timeout=5).status_code == 200
    assert session.get(dspace.rest + "/status", timeout=5).json()["authenticated"] is False
    assert requests.post(dspace.rest + "/logout", timeout=5).status_code == 200


def test_unknown_credentials_on_requests_mean_anonymous_not_an_error(dspace):
    session = requests.Session()
    session.headers["rest-dspace-token"] = "not-a-token"
    session.cookies.set("JSESSIONID", "NOTASESSION")
    assert session.get(dspace.rest + "/handle/10754/1?expand=metadata", timeout=5).status_code == 200
    response = session.put(dspace.item_url("10754/1") + "/metadata", json=[], timeout=5)
    assert response.status_code == 401


def test_rest_test_endpoint(dspace):
    assert requests.get(dspace.rest + "/test", timeout=5).text == "REST api is running."


# ---------------------------------------------------------------- reading items


def test_handle_fetch_has_dspace_field_names_and_order(dspace):
    response = dspace.login().get(dspace.rest + "/handle/10754/1?expand=metadata", timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    item = response.json()
    head = ITEM_KEYS_5 if dspace.sim.version == 5 else ITEM_KEYS_6
    assert list(item) == head + ITEM_KEYS_TAIL
    stored = dspace.sim.item("10754/1")
    ident = stored.id if dspace.sim.version == 5 else stored.uuid
    assert item["id" if dspace.sim.version == 5 else "uuid"] == ident
    assert isinstance(ident, int if dspace.sim.version == 5 else str)
    assert item["link"] == f"/rest/items/{ident}"
    assert item["name"] == "First item" and item["handle"] == "10754/1" and item["type"] == "item"
    assert item["expand"] == ["parentCollection", "parentCollectionList", "parentCommunityList", "bitstreams", "all"]
    assert item["lastModified"] == "2019-06-10 13:30:45.28"
    assert item["archived"] == "true" and item["withdrawn"] == "false"
    assert item["parentCollection"] is None and item["bitstreams"] is None
    first = item["metadata"][0]
    assert first["key"] == "dc.contributor.author" and first["language"] is None
    if dspace.sim.version == 5:
        assert list(first) == ["key", "value", "language"]
    else:
        assert list(first) == ["key", "value", "language", "schema", "element", "qualifier"]
        assert (first["schema"], first["element"], first["qualifier"]) == ("dc", "contributor", "author")


def test_metadata_is_grouped_by_field_in_registry_order(dspace):
    entries = metadata(dspace, dspace.login(), "10754/1")
    keys = [entry["key"] for entry in entries]
    assert keys.index("dc.contributor.author") < keys.index("dc.date.issued") < keys.index("dc.title")
    assert values(entries, "dc.subject") == ["Corals", "Reefs"]


def test_handle_fetch_without_expand_leaves_metadata_null(dspace):
    item = requests.get(dspace.rest + "/handle/10754/1", timeout=5).json()
    assert item["metadata"] is None
    assert item["expand"] == [
        "metadata",
        "parentCollection",
        "parentCollectionList",
        "parentCommunityList",
        "bitstreams",
        "all",
    ]
    everything = requests.get(dspace.rest + "/handle/10754/1?expand=all", timeout=5).json()
    assert everything["expand"] == [] and everything["parentCollection"]["type"] == "collection"
    assert everything["parentCommunityList"][0]["type"] == "community" and everything["bitstreams"] == []


def test_last_modified_is_a_java_timestamp_in_the_server_zone(served):
    dspace = served(5, server_timezone=timezone(timedelta(hours=3)))
    dspace.sim.set_last_modified("10754/1", datetime(2022, 1, 20, 0, 0, 22, 0, tzinfo=UTC))
    item = requests.get(dspace.rest + "/handle/10754/1", timeout=5).json()
    assert item["lastModified"] == "2022-01-20 03:00:22.0"


def test_unknown_handle_is_500_html_not_404(dspace):
    response = requests.get(dspace.rest + "/handle/10754/999?expand=metadata", timeout=5)
    assert response.status_code == 500 and response.headers["Content-Type"].startswith("text/html")


def test_unknown_handle_status_is_configurable(served):
    dspace = served(6, unknown_handle_status=404)
    assert requests.get(dspace.rest + "/handle/10754/999", timeout=5).status_code == 404


def test_item_metadata_endpoint_and_unknown_ids(dspace):
    entries = requests.get(dspace.item_url("10754/2") + "/metadata", timeout=5).json()
    assert values(entries, "dc.title") == ["Second item"]
    assert requests.get(dspace.rest + "/items/99999/metadata", timeout=5).status_code == 404
    assert requests.get(dspace.rest + "/items/abc/metadata", timeout=5).status_code == 404
    item = requests.get(dspace.item_url("10754/2") + "?expand=metadata", timeout=5).json()
    assert item["handle"] == "10754/2" and item["metadata"]


def test_dspace6_also_accepts_the_legacy_numeric_id(served):
    dspace = served(6)
    legacy = dspace.sim.item("10754/2").id
    assert requests.get(f"{dspace.rest}/items/{legacy}", timeout=5).json()["handle"] == "10754/2"


def test_provenance_is_hidden_from_anonymous_readers(dspace):
    anonymous = requests.get(dspace.item_url("10754/1") + "/metadata", timeout=5).json()
    assert values(anonymous, "dc.description.provenance") == []
    admin = metadata(dspace, dspace.login(), "10754/1")
    assert values(admin, "dc.description.provenance") == ["Made available in DSpace"]


def test_withdrawn_items_are_hidden_from_anonymous_and_flagged_for_admins(dspace):
    dspace.sim.withdraw_item("10754/1")
    assert requests.get(dspace.rest + "/handle/10754/1", timeout=5).status_code == 500
    assert requests.get(dspace.item_url("10754/1"), timeout=5).status_code == 401
    item = dspace.login().get(dspace.rest + "/handle/10754/1", timeout=5).json()
    assert item["withdrawn"] == "true" and item["archived"] == "false"


def test_items_list_pages(dspace):
    page = requests.get(dspace.rest + "/items?limit=1&offset=1", timeout=5).json()
    assert [item["handle"] for item in page] == ["10754/2"]


# ---------------------------------------------------------------- writing metadata


def test_put_replaces_only_the_keys_sent_and_bumps_last_modified(dspace):
    session = dspace.login()
    before = dspace.sim.item("10754/1")
    body = [
        {"key": "dc.title", "value": "New title", "language": "en"},
        {"key": "dc.subject", "value": "Only subject", "language": None},
    ]
    response = session.put(dspace.item_url("10754/1") + "/metadata", json=body, timeout=5)
    assert response.status_code == 200 and response.text == ""
    after = dspace.sim.item("10754/1")
    assert after.values("dc.title") == ["New title"] and after.values("dc.subject") == ["Only subject"]
    assert after.values("dc.date.issued") == ["2019-06"]
    assert len(after.values("dc.contributor.author")) == 3
    assert after.last_modified > before.last_modified
    fetched = session.get(dspace.rest + "/handle/10754/1", timeout=5).json()
    assert fetched["name"] == "New title" and fetched["lastModified"] != "2019-06-10 13:30:45.28"


def test_put_of_the_whole_record_read_back_keeps_it_but_links_bare_author_names(dspace):
    session = dspace.login()
    entries = metadata(dspace, session, "10754/1")
    before = dspace.sim.item("10754/1")
    body = [{"key": e["key"], "value": e["value"], "language": e["language"]} for e in entries]
    assert session.put(dspace.item_url("10754/1") + "/metadata", json=body, timeout=5).status_code == 200
    expected = [
        {**e, "value": f"Plain, Pat::{person_authority('Plain, Pat').key}"} if e["value"] == "Plain, Pat" else e
        for e in entries
    ]
    assert metadata(dspace, session, "10754/1") == expected
    assert dspace.sim.item("10754/1").last_modified > before.last_modified


def test_post_appends_values(dspace):
    session = dspace.login()
    body = [{"key": "dc.subject", "value": "Sponges", "language": "en_US"}]
    assert session.post(dspace.item_url("10754/1") + "/metadata", json=body, timeout=5).status_code == 200
    assert dspace.sim.values("10754/1", "dc.subject") == ["Corals", "Reefs", "Sponges"]


def test_delete_metadata_keeps_only_the_protected_fields(dspace):
    session = dspace.login()
    assert session.delete(dspace.item_url("10754/1") + "/metadata", timeout=5).status_code == 200
    keys = [value.key for value in dspace.sim.item("10754/1").metadata]
    assert keys == ["dc.identifier.uri", "dc.description.provenance"]


def test_keys_without_two_or_three_parts_are_silently_skipped(dspace):
    session = dspace.login()
    body = [{"key": "title", "value": "x"}, {"key": "dc.a.b.c", "value": "x"}, {"key": "dc.title", "value": "T"}]
    assert session.put(dspace.item_url("10754/1") + "/metadata", json=body, timeout=5).status_code == 200
    assert dspace.sim.values("10754/1", "dc.title") == ["T"]
    assert all(len(v.key.split(".")) in (2, 3) for v in dspace.sim.item("10754/1").metadata)


def test_write_errors_have_dspace_status_codes(dspace):
    session = dspace.login()
    url = dspace.item_url("10754/1") + "/metadata"
    assert requests.put(url, json=[], timeout=5).status_code == 401
    assert requests.post(url, json=[], timeout=5).status_code == 401
    assert requests.delete(url, timeout=5).status_code == 401
    assert session.put(dspace.rest + "/items/99999/metadata", json=[], timeout=5).status_code == 404
    bad = session.put(url, data="[{not json", headers={"Content-Type": "application/json"}, timeout=5)
    assert bad.status_code == 400 and bad.headers["Content-Type"].startswith("text/html")
    assert session.put(url, json={"key": "dc.title"}, timeout=5).status_code == 400
    assert session.put(url, data="x", headers={"Content-Type": "text/plain"}, timeout=5).status_code == 415
    assert dspace.sim.values("10754/1", "dc.title") == ["First item"]


def test_non_admin_users_cannot_write(dspace):
    dspace.sim.add_user("reader@example.edu", "pw", "Reader", admin=False)
    session = dspace.login("reader@example.edu", "pw")
    assert session.get(dspace.rest + "/status", timeout=5).json()["authenticated"] is True
    assert session.put(dspace.item_url("10754/1") + "/metadata", json=[], timeout=5).status_code == 401


# ---------------------------------------------------------------- Atmire expanded-ORCID patch


def test_authority_values_read_as_name_key_and_name_key_orcid(dspace):
    authors = values(metadata(dspace, dspace.login(), "10754/1"), "dc.contributor.author")
    jim, ann = person_authority("Babson, Jim", ORCID), person_authority("Lee, Ann")
    assert authors == [f"Babson, Jim::{jim.key}::{ORCID}", f"Lee, Ann::{ann.key}", "Plain, Pat"]
    assert re.fullmatch(r"[0-9a-f]{32}", jim.key)


def test_writing_name_and_orcid_links_a_new_orcid_authority(dspace):
    session = dspace.login()
    body = [{"key": "dc.contributor.author", "value": f"Plain, Pat::{OTHER_ORCID}", "language": None}]
    assert session.put(dspace.item_url("10754/1") + "/metadata", json=body, timeout=5).status_code == 200
    key = person_authority("Plain, Pat", OTHER_ORCID).key
    assert values(metadata(dspace, session, "10754/1"), "dc.contributor.author") == [
        f"Plain, Pat::{key}::{OTHER_ORCID}"
    ]
    assert dspace.sim.authorities()[key].orcid == OTHER_ORCID


def test_writing_an_orcid_already_known_reuses_its_authority(dspace):
    session = dspace.login()
    body = [{"key": "dc.contributor.author", "value": f"Babson, J.::{ORCID}", "language": None}]
    session.put(dspace.item_url("10754/1") + "/metadata", json=body, timeout=5)
    jim = person_authority("Babson, Jim", ORCID)
    assert values(metadata(dspace, session, "10754/1"), "dc.contributor.author") == [f"Babson, J.::{jim.key}::{ORCID}"]


def test_writing_name_and_known_key_takes_the_authority_name(dspace):
    session = dspace.login()
    ann = person_authority("Lee, Ann")
    body = [
        {"key": "dc.contributor.author", "value": f"Typo, Anne::{ann.key}", "language": None},
        {"key": "dc.contributor.author", "value": "Someone, Else::0123456789abcdef0123456789abcdef"},
    ]
    session.put(dspace.item_url("10754/1") + "/metadata", json=body, timeout=5)
    stored = [v for v in dspace.sim.item("10754/1").metadata if v.key == "dc.contributor.author"]
    assert [(v.value, v.authority, v.confidence) for v in stored] == [
        ("Lee, Ann", ann.key, 600),
        ("Someone, Else", None, -1),
    ]


def test_resending_what_was_read_keeps_the_orcid_link(dspace):
    session = dspace.login()
    entries = metadata(dspace, session, "10754/2")
    linked = [e for e in entries if e["key"] == "dc.contributor.author" and "::" in e["value"]]
    session.put(dspace.item_url("10754/2") + "/metadata", json=linked, timeout=5)
    assert values(metadata(dspace, session, "10754/2"), "dc.contributor.author") == [e["value"] for e in linked]


def test_writing_the_bare_name_drops_the_orcid_but_links_a_plain_authority(dspace):
    session = dspace.login()
    body = [{"key": "dc.contributor.author", "value": "Babson, Jim", "language": None}]
    session.put(dspace.item_url("10754/1") + "/metadata", json=body, timeout=5)
    (value,) = values(metadata(dspace, session, "10754/1"), "dc.contributor.author")
    assert value == f"Babson, Jim::{person_authority('Babson, Jim').key}"


def test_double_colons_in_other_fields_are_stored_as_sent(dspace):
    session = dspace.login()
    body = [{"key": "dc.title", "value": f"A::{ORCID}", "language": None}]
    session.put(dspace.item_url("10754/1") + "/metadata", json=body, timeout=5)
    assert dspace.sim.values("10754/1", "dc.title") == [f"A::{ORCID}"]


def test_without_the_patch_values_are_plain(served):
    dspace = served(5, expanded_orcid=False)
    session = dspace.login()
    assert values(metadata(dspace, session, "10754/1"), "dc.contributor.author")[0] == "Babson, Jim"
    body = [{"key": "dc.contributor.author", "value": f"Babson, Jim::{ORCID}", "language": None}]
    session.put(dspace.item_url("10754/1") + "/metadata", json=body, timeout=5)
    assert dspace.sim.values("10754/1", "dc.contributor.author") == [f"Babson, Jim::{ORCID}"]


def test_a_value_whose_authority_is_not_indexed_fails_the_read_with_500(dspace):
    dspace.sim.set_values(
        "10754/1", "dc.contributor.author", [MetadataValue("dc.contributor.author", "X", None, "f" * 32)]
    )
    assert dspace.login().get(dspace.item_url("10754/1") + "/metadata", timeout=5).status_code == 500


def test_authority_rename_rekeys_and_renames_everywhere(dspace):
    session = dspace.login()
    old = person_authority("Babson, Jim", ORCID)
    before = dspace.sim.item("10754/2").last_modified
    response = session.put(
        f"{dspace.rest}/authorities/{old.key}/value",
        data="Babson, James",
        headers={"Content-Type": "text/plain"},
        timeout=5,
    )
    assert response.status_code == 200
    new = person_authority("Babson, James", ORCID)
    assert new.key != old.key and old.key not in dspace.sim.authorities()
    assert dspace.sim.authorities()[new.key].orcid == ORCID
    for handle in ("10754/1", "10754/2"):
        authors = values(metadata(dspace, session, handle), "dc.contributor.author")
        assert authors[0] == f"Babson, James::{new.key}::{ORCID}"
    assert dspace.sim.item("10754/2").last_modified > before


def test_authority_rename_errors(dspace):
    session = dspace.login()
    key = person_authority("Lee, Ann").key
    url = f"{dspace.rest}/authorities/{key}/value"
    text = {"Content-Type": "text/plain"}
    assert requests.put(url, data="Lee, Anne", headers=text, timeout=5).status_code == 401
    assert session.put(f"{dspace.rest}/authorities/nokey/value", data="X", headers=text, timeout=5).status_code == 500
    assert key in dspace.sim.authorities()


def test_authority_rename_can_be_disabled(served):
    dspace = served(5, allow_authority_updates=False)
    key = person_authority("Lee, Ann").key
    response = dspace.login().put(
        f"{dspace.rest}/authorities/{key}/value", data="Lee, Anne", headers={"Content-Type": "text/plain"}, timeout=5
    )
    assert response.status_code == 400


# ---------------------------------------------------------------- faults, sessions, call log


def test_fail_next_answers_matching_calls_with_the_status_then_recovers(dspace):
    dspace.sim.fail_next(2, 503, method="GET", path=r"^/rest/handle/")
    url = dspace.rest + "/handle/10754/1"
    assert requests.get(dspace.rest + "/status", timeout=5).status_code == 200
    assert [requests.get(url, timeout=5).status_code for _ in range(3)] == [503, 503, 200]
    assert [(c.method, c.path, c.status) for c in dspace.sim.calls()][-3:] == [
        ("GET", "/rest/handle/10754/1", 503),
        ("GET", "/rest/handle/10754/1", 503),
        ("GET", "/rest/handle/10754/1", 200),
    ]


def test_fail_next_can_send_retry_after(dspace):
    dspace.sim.fail_next(1, 503, retry_after=7)
    response = requests.get(dspace.rest + "/status", timeout=5)
    assert response.status_code == 503 and response.headers["Retry-After"] == "7"
    assert "Retry-After" not in requests.get(dspace.rest + "/status", timeout=5).headers


def test_fail_next_pattern_can_match_the_query(dspace):
    dspace.sim.fail_next(1, 500, path="resumptionToken=")
    assert requests.get(dspace.url + "/oai/request?verb=Identify", timeout=5).status_code == 200
    response = requests.get(dspace.url + "/oai/request?verb=ListIdentifiers&resumptionToken=xoai////0", timeout=5)
    assert response.status_code == 500


def test_timeout_next_holds_the_answer_past_the_client_timeout(dspace):
    dspace.sim.timeout_next(1, seconds=0.6, path="/rest/status")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(dspace.rest + "/status", timeout=0.2)
    assert requests.get(dspace.rest + "/status", timeout=5).status_code == 200


def test_truncate_next_cuts_json_and_xml_bodies(dspace):
    dspace.sim.truncate_next(2, keep=0.5)
    response = requests.get(dspace.rest + "/handle/10754/1?expand=metadata", timeout=5)
    with pytest.raises(ValueError):
        response.json()
    xml = requests.get(dspace.url + "/oai/request?verb=Identify", timeout=5).text
    assert not xml.rstrip().endswith("</OAI-PMH>")
    assert requests.get(dspace.rest + "/handle/10754/1", timeout=5).json()["handle"] == "10754/1"


def test_latency_delays_every_matching_call_until_cleared(dspace):
    dspace.sim.set_latency(0.3, path="/rest/status")
    started = time.monotonic()
    requests.get(dspace.rest + "/status", timeout=5)
    assert time.monotonic() - started >= 0.3
    dspace.sim.clear_faults()
    started = time.monotonic()
    requests.get(dspace.rest + "/status", timeout=5)
    assert time.monotonic() - started < 0.3


def test_invalidated_sessions_make_clients_log_in_again(dspace):
    session = dspace.login()
    url = dspace.item_url("10754/1") + "/metadata"
    body = [{"key": "dc.title", "value": "T2", "language": None}]
    dspace.sim.invalidate_sessions()
    assert session.get(dspace.rest + "/status", timeout=5).json()["authenticated"] is False
    assert session.put(url, json=body, timeout=5).status_code == 401
    assert dspace.login().put(url, json=body, timeout=5).status_code == 200


def test_item_helpers_change_state_and_last_modified(dspace):
    sim = dspace.sim
    before = sim.item("10754/1").last_modified
    sim.set_values("10754/1", "dc.title", ["Changed"])
    assert sim.item("10754/1").name == "Changed" and sim.item("10754/1").last_modified > before
    sim.replace_metadata("10754/1", [("dc.title", "Only")])
    assert [v.key for v in sim.item("10754/1").metadata] == ["dc.title"]
    sim.delete_item("10754/2")
    assert [i.handle for i in sim.items()] == ["10754/1"] and [i.handle for i in sim.deleted_items()] == ["10754/2"]
    assert requests.get(dspace.rest + "/handle/10754/2", timeout=5).status_code == 500
    assert sim.item_by_id(sim.item("10754/1").id).handle == "10754/1"
    with pytest.raises(ValueError):
        sim.add_item("10754/1", [])


def test_version_must_be_5_or_6():
    with pytest.raises(ValueError):
        DSpaceSimulator(7)


def test_fault_counts_must_be_positive(dspace):
    with pytest.raises(ValueError):
        dspace.sim.fail_next(0)


def test_concurrent_writes_are_serialised_each_bumping_last_modified(served):
    now = datetime(2025, 1, 1, tzinfo=UTC)
    dspace = served(6, clock=lambda: now)
    sessions = [dspace.login() for _ in range(4)]
    url = dspace.item_url("10754/1") + "/metadata"

    def write(session: requests.Session, number: int) -> None:
        for step in range(5):
            body = [{"key": "dc.subject", "value": f"s{number}-{step}", "language": None}]
            assert session.post(url, json=body, timeout=5).status_code == 200

    threads = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(dspace.sim.values("10754/1", "dc.subject")) == 2 + 20
    # a frozen clock shows every write bumped lastModified by at least a millisecond
    assert dspace.sim.item("10754/1").last_modified == now + timedelta(milliseconds=19)
