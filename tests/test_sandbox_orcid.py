"""The ORCID simulator over real HTTP: OAuth, Member API v3.0, validation, limits, faults, call log."""

from __future__ import annotations

import re
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from lxml import etree

from ioi.orcid_ids import is_valid_orcid
from ioi.sandbox.orcid import EXPIRES_IN, OrcidSimulator
from ioi.sandbox.orcid_faults import TokenBucket

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "orcid-schema"
SAMPLES = SHARED / "record_3.0" / "samples" / "write_samples"
ERR = "{http://www.orcid.org/ns/error}"
XML = "application/vnd.orcid+xml"
CALLBACK = "http://127.0.0.1:5000/orcid/callback"
SCOPE = "/read-limited /activities/update"
NAMESPACES = (
    'xmlns:common="http://www.orcid.org/ns/common" xmlns:work="http://www.orcid.org/ns/work" '
    'xmlns:employment="http://www.orcid.org/ns/employment" xmlns:education="http://www.orcid.org/ns/education"'
)


def date_xml(tag: str, year: str = "2021", month: str | None = "03", day: str | None = "05") -> str:
    parts = f"<common:year>{year}</common:year>"
    parts += f"<common:month>{month}</common:month>" if month else ""
    parts += f"<common:day>{day}</common:day>" if day else ""
    return f"<common:{tag}>{parts}</common:{tag}>"


def ext_id(value: str, id_type: str = "doi", relationship: str = "self") -> str:
    return (
        f"<common:external-id><common:external-id-type>{id_type}</common:external-id-type>"
        f"<common:external-id-value>{value}</common:external-id-value>"
        f"<common:external-id-relationship>{relationship}</common:external-id-relationship></common:external-id>"
    )


def work_xml(
    doi: str | None = "10.1000/one",
    title: str = "A small work",
    work_type: str = "journal-article",
    date: str | None = None,
    ids: str | None = None,
    put_code: int | None = None,
) -> bytes:
    """A small valid work (unless the arguments make it invalid)."""
    attr = f' put-code="{put_code}"' if put_code is not None else ""
    if ids is None:
        ids = ext_id(doi) if doi else ""
    body = (
        f"<work:work {NAMESPACES}{attr}><work:title><common:title>{title}</common:title></work:title>"
        f"<work:type>{work_type}</work:type>{date or ''}<common:external-ids>{ids}</common:external-ids></work:work>"
    )
    return body.encode()


def affiliation_xml(
    section: str = "employment",
    name: str | None = "Test University",
    city: str | None = "Lisbon",
    country: str | None = "PT",
    org_id: str | None = "https://ror.org/01c27hj86",
    source: str = "ROR",
    start: str | None = None,
    end: str | None = None,
    put_code: int | None = None,
    role: str = "Researcher",
) -> bytes:
    """A small valid employment/education (unless the arguments make it invalid)."""
    address = f"<common:city>{city}</common:city>" if city else ""
    address += f"<common:country>{country}</common:country>" if country else ""
    disambiguated = (
        "<common:disambiguated-organization>"
        f"<common:disambiguated-organization-identifier>{org_id}</common:disambiguated-organization-identifier>"
        f"<common:disambiguation-source>{source}</common:disambiguation-source></common:disambiguated-organization>"
        if org_id
        else ""
    )
    org = (
        f"<common:organization><common:name>{name}</common:name><common:address>{address}</common:address>"
        f"{disambiguated}</common:organization>"
        if name
        else ""
    )
    attr = f' put-code="{put_code}"' if put_code is not None else ""
    body = (
        f"<{section}:{section} {NAMESPACES}{attr}><common:role-title>{role}</common:role-title>"
        f"{start or ''}{end or ''}{org}</{section}:{section}>"
    )
    return body.encode()


class Api:
    """A tiny requests wrapper for one researcher's record."""

    def __init__(self, base: str, orcid: str, token: str, session: requests.Session | None = None):
        self.base, self.orcid, self.token = base, orcid, token
        self.http = session or requests.Session()

    def url(self, path: str) -> str:
        return f"{self.base}/v3.0/{self.orcid}/{path}"

    def headers(self, accept: str = XML, token: str | None = None) -> dict:
        return {"Authorization": f"Bearer {token or self.token}", "Accept": accept, "Content-Type": XML}

    def post(self, section: str, body: bytes, **kw) -> requests.Response:
        return self.http.post(self.url(section), data=body, headers=self.headers(**kw), timeout=5)

    def put(self, path: str, body: bytes, **kw) -> requests.Response:
        return self.http.put(self.url(path), data=body, headers=self.headers(**kw), timeout=5)

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url(path), headers=self.headers(**kw), timeout=5)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.http.delete(self.url(path), headers=self.headers(**kw), timeout=5)


def error_of(response: requests.Response) -> dict:
    """The ORCID XML error body as {local-name: text}."""
    assert response.headers["Content-Type"].startswith(XML)
    root = etree.fromstring(response.content)
    assert root.tag == f"{ERR}error"
    return {etree.QName(child).localname: child.text for child in root}


def put_code_of(response: requests.Response) -> int:
    return int(response.headers["Location"].rsplit("/", 1)[1])


@pytest.fixture(scope="module")
def running():
    """One simulator and server per module (stopping a server costs half a second); tests reset its state."""
    simulator = OrcidSimulator()
    with simulator.serve() as server:
        yield simulator, server


@pytest.fixture
def sim(running) -> OrcidSimulator:
    simulator = running[0]
    simulator.reset()
    return simulator


@pytest.fixture
def server(running, sim):
    return running[1]


@pytest.fixture
def env(sim, server) -> SimpleNamespace:
    """A registered client, a researcher with an update token, and an Api for that record."""
    client = sim.register_client(redirect_uris=[CALLBACK], name="IOI Test")
    person = sim.create_researcher("Ada", "Lovelace", "ada@example.org")
    token = sim.issue_token(client.client_id, person.orcid, SCOPE)
    api = Api(server.url, person.orcid, token.access_token)
    return SimpleNamespace(sim=sim, url=server.url, client=client, person=person, token=token, api=api)


def authorize_params(env, **overrides) -> dict:
    params = {
        "client_id": env.client.client_id,
        "response_type": "code",
        "scope": SCOPE,
        "redirect_uri": CALLBACK,
        "state": "st-123",
    }
    params.update(overrides)
    return params


def authorize(env, **form) -> requests.Response:
    data = {**authorize_params(env), "action": "authorize", **form}
    return requests.post(f"{env.url}/oauth/authorize", data=data, allow_redirects=False, timeout=5)


def query_of(response: requests.Response) -> dict:
    location = response.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def get_code(env) -> str:
    response = authorize(env, mode="signin", researcher=env.person.orcid)
    return query_of(response)["code"]


def exchange(env, code: str, **extra) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, **extra}
    auth = (env.client.client_id, env.client.client_secret)
    return requests.post(f"{env.url}/oauth/token", data=data, auth=auth, headers={"Accept": "application/json"})


# ---- OAuth authorize page ---------------------------------------------------------------------------------------


def test_authorize_page_renders_consent_form_with_researchers_and_prefill(env):
    params = authorize_params(env, given_names="Grace", family_names="Hopper", email="grace@example.org")
    response = requests.get(f"{env.url}/oauth/authorize", params=params, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert "<form" in page and 'value="authorize"' in page and 'value="deny"' in page
    assert env.person.orcid in page and "Ada Lovelace" in page
    assert 'value="Grace"' in page and 'value="Hopper"' in page and 'value="grace@example.org"' in page
    assert "/activities/update" in page and "IOI Test" in page


def test_authorize_preselects_researcher_given_by_orcid_param(env):
    params = authorize_params(env, orcid=env.person.orcid)
    page = requests.get(f"{env.url}/oauth/authorize", params=params, timeout=5).text
    assert f'value="{env.person.orcid}" selected' in page


@pytest.mark.parametrize(
    "override", [{"client_id": "APP-UNKNOWN000000000"}, {"redirect_uri": "http://127.0.0.1:6666/elsewhere"}]
)
def test_authorize_with_unknown_client_or_redirect_shows_error_page_without_redirect(env, override):
    params = authorize_params(env, **override)
    response = requests.get(f"{env.url}/oauth/authorize", params=params, allow_redirects=False, timeout=5)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "text/html" in response.headers["Content-Type"]


def test_host_only_redirect_registration_allows_any_path_on_that_host(env):
    client = env.sim.register_client(redirect_uris=["http://127.0.0.1:5000"])
    params = authorize_params(env, client_id=client.client_id, redirect_uri="http://127.0.0.1:5000/any/path")
    assert requests.get(f"{env.url}/oauth/authorize", params=params, timeout=5).status_code == 200
    params["redirect_uri"] = "http://127.0.0.1:5001/any/path"
    assert requests.get(f"{env.url}/oauth/authorize", params=params, timeout=5).status_code == 400


def test_authorize_as_existing_researcher_redirects_with_six_char_code_and_state(env):
    response = authorize(env, mode="signin", researcher=env.person.orcid)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(CALLBACK + "?")
    query = query_of(response)
    assert re.fullmatch(r"[A-Za-z0-9]{6}", query["code"])
    assert query["state"] == "st-123"


def test_sign_in_by_email(env):
    response = authorize(env, mode="signin", signin_email="ADA@example.org")
    token = exchange(env, query_of(response)["code"]).json()
    assert token["orcid"] == env.person.orcid


def test_sign_in_with_unknown_email_rerenders_the_page(env):
    response = authorize(env, mode="signin", signin_email="nobody@example.org")
    assert response.status_code == 400 and "<form" in response.text


def test_registering_creates_a_researcher_with_a_valid_orcid(env):
    form = {"mode": "register", "given_names": "Grace", "family_names": "Hopper", "register_email": "g@example.org"}
    response = authorize(env, **form)
    token = exchange(env, query_of(response)["code"]).json()
    assert token["name"] == "Grace Hopper"
    assert is_valid_orcid(token["orcid"]) and token["orcid"] != env.person.orcid
    assert any(r.orcid == token["orcid"] and r.email == "g@example.org" for r in env.sim.researchers)


def test_deny_redirects_with_access_denied_and_state(env):
    response = authorize(env, action="deny")
    assert response.status_code == 302
    query = query_of(response)
    assert query["error"] == "access_denied" and query["error_description"] and query["state"] == "st-123"
    assert "code" not in query


def test_unknown_scope_redirects_with_invalid_scope(env):
    params = authorize_params(env, scope="/read-limited /everything")
    response = requests.get(f"{env.url}/oauth/authorize", params=params, allow_redirects=False, timeout=5)
    assert response.status_code == 302 and query_of(response)["error"] == "invalid_scope"


# ---- token endpoint ---------------------------------------------------------------------------------------------


def test_token_exchange_returns_the_documented_fields(env):
    response = exchange(env, get_code(env))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"access_token", "token_type", "refresh_token", "expires_in", "scope", "name", "orcid"}
    uuid.UUID(body["access_token"])
    uuid.UUID(body["refresh_token"])
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == EXPIRES_IN == 631138518
    assert body["scope"] == SCOPE
    assert body["name"] == "Ada Lovelace" and body["orcid"] == env.person.orcid


def test_token_exchange_accepts_client_credentials_in_the_form(env):
    data = {
        "grant_type": "authorization_code",
        "code": get_code(env),
        "redirect_uri": CALLBACK,
        "client_id": env.client.client_id,
        "client_secret": env.client.client_secret,
    }
    response = requests.post(f"{env.url}/oauth/token", data=data, timeout=5)
    assert response.status_code == 200 and response.json()["orcid"] == env.person.orcid


def test_reused_code_is_rejected_and_revokes_tokens_issued_from_it(env):
    code = get_code(env)
    first = exchange(env, code).json()
    api = Api(env.url, env.person.orcid, first["access_token"])
    assert api.get("works").status_code == 200
    again = exchange(env, code)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant", "error_description": f"Reused authorization code: {code}"}
    assert api.get("works").status_code == 401


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        ({"grant_type": "authorization_code", "code": "nope12"}, True, 400, "invalid_grant"),
        ({"code": "nope12"}, True, 400, "unsupported_grant_type"),
        ({"grant_type": "password"}, True, 400, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "nope12"}, False, 401, "invalid_client"),
    ],
)
def test_token_endpoint_errors(env, data, auth, status, error):
    credentials = (env.client.client_id, env.client.client_secret if auth else "wrong")
    response = requests.post(f"{env.url}/oauth/token", data=data, auth=credentials, timeout=5)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error
    if error == "invalid_grant":
        assert body["error_description"] == "Invalid authorization code: nope12"
    if "grant_type" not in data:
        assert body["error_description"] == "grant_type is missing"


def test_token_exchange_needs_the_same_redirect_uri(env):
    response = exchange(env, get_code(env), redirect_uri="http://127.0.0.1:5000/other")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_refresh_grant_issues_new_tokens_with_a_scope_subset(env):
    first = exchange(env, get_code(env)).json()
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "scope": "/read-limited"}
    auth = (env.client.client_id, env.client.client_secret)
    response = requests.post(f"{env.url}/oauth/token", data=data, auth=auth, timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["scope"] == "/read-limited" and body["orcid"] == env.person.orcid
    assert body["access_token"] != first["access_token"] and body["expires_in"] == EXPIRES_IN
    refreshed = Api(env.url, env.person.orcid, body["access_token"])
    assert refreshed.get("works").status_code == 200
    assert refreshed.post("work", work_xml()).status_code == 403
    # without revoke_old the old token keeps working
    assert Api(env.url, env.person.orcid, first["access_token"]).get("works").status_code == 200


def test_refresh_with_revoke_old_revokes_the_old_access_token(env):
    first = exchange(env, get_code(env)).json()
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "revoke_old": "true"}
    auth = (env.client.client_id, env.client.client_secret)
    body = requests.post(f"{env.url}/oauth/token", data=data, auth=auth, timeout=5).json()
    assert body["scope"] == SCOPE
    assert Api(env.url, env.person.orcid, first["access_token"]).get("works").status_code == 401
    assert Api(env.url, env.person.orcid, body["access_token"]).get("works").status_code == 200


def test_refresh_with_a_wider_scope_is_rejected(env):
    token = env.sim.issue_token(env.client.client_id, env.person.orcid, "/read-limited")
    data = {"grant_type": "refresh_token", "refresh_token": token.refresh_token, "scope": SCOPE}
    auth = (env.client.client_id, env.client.client_secret)
    response = requests.post(f"{env.url}/oauth/token", data=data, auth=auth, timeout=5)
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_revoke_then_the_token_is_rejected_with_401(env, which):
    assert env.api.get("works").status_code == 200
    data = {
        "client_id": env.client.client_id,
        "client_secret": env.client.client_secret,
        "token": getattr(env.token, which),
    }
    assert requests.post(f"{env.url}/oauth/revoke", data=data, timeout=5).status_code == 200
    response = env.api.get("works")
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {
        "error": "invalid_token",
        "error_description": f"Invalid access token: {env.token.access_token}",
    }


def test_revoke_needs_client_credentials_and_a_token(env):
    auth = (env.client.client_id, env.client.client_secret)
    assert requests.post(f"{env.url}/oauth/revoke", data={}, auth=auth, timeout=5).status_code == 400
    bad = requests.post(f"{env.url}/oauth/revoke", data={"token": "x"}, auth=("x", "y"), timeout=5)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


def test_a_token_revoked_by_the_researcher_still_works_for_delete(env):
    code = put_code_of(env.api.post("work", work_xml()))
    env.sim.revoke_token(env.token.access_token)
    assert env.api.get(f"work/{code}").status_code == 401
    assert env.api.post("work", work_xml(doi="10.1/other")).status_code == 401
    assert env.api.delete(f"work/{code}").status_code == 204


def test_authorization_codes_expire_after_a_day(env, monkeypatch):
    code = get_code(env)
    now = env.sim.clock()
    monkeypatch.setattr(env.sim, "clock", lambda: now + 1441 * 60)
    response = exchange(env, code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_schema_dir_follows_the_environment(monkeypatch, tmp_path):
    from ioi.sandbox.orcid_rules import schema_dir

    monkeypatch.setenv("IOI_ORCID_SCHEMA_DIR", str(tmp_path))
    assert schema_dir() is None
    if SHARED.is_dir():
        monkeypatch.setenv("IOI_ORCID_SCHEMA_DIR", str(SHARED))
        assert schema_dir() == SHARED
        monkeypatch.delenv("IOI_ORCID_SCHEMA_DIR")
        assert schema_dir() == SHARED


def test_unknown_expired_and_missing_tokens_get_401_json(env):
    assert env.api.get("works", token="not-a-token").json()["error"] == "invalid_token"
    env.sim.expire_token(env.token.access_token)
    expired = env.api.get("works")
    assert expired.status_code == 401 and expired.json()["error"] == "invalid_token"
    bare = requests.get(env.api.url("works"), timeout=5)
    assert bare.status_code == 401 and "error" in bare.json()


# ---- Member API: create, read, update, delete -----------------------------------------------------------------


SMALL_DOCS = {
    "work": (work_xml, "work:work"),
    "employment": (lambda **kw: affiliation_xml("employment", **kw), "employment:employment"),
    "education": (lambda **kw: affiliation_xml("education", **kw), "education:education"),
}


@pytest.mark.parametrize("section", ["work", "employment", "education"])
def test_post_get_put_delete_each_section(env, section):
    build, _ = SMALL_DOCS[section]
    created = env.api.post(section, build())
    assert created.status_code == 201
    assert created.content == b""
    code = put_code_of(created)
    assert created.headers["Location"] == f"{env.url}/v3.0/{env.person.orcid}/{section}/{code}"

    read = env.api.get(f"{section}/{code}")
    assert read.status_code == 200 and read.headers["Content-Type"].startswith(XML)
    root = etree.fromstring(read.content)
    assert etree.QName(root).localname == section and root.get("put-code") == str(code)
    assert root.get("path") == f"/{env.person.orcid}/{section}/{code}"
    assert root.findtext(".//{*}source-client-id/{*}path") == env.client.client_id

    if section == "work":
        changed = work_xml(title="A better title", put_code=code)
    else:
        changed = build(put_code=code, role="Professor")
    updated = env.api.put(f"{section}/{code}", changed)
    assert updated.status_code == 200
    assert ("A better title" if section == "work" else "Professor") in updated.text
    again = env.api.get(f"{section}/{code}")
    assert again.content == updated.content

    assert env.api.delete(f"{section}/{code}").status_code == 204
    assert env.api.get(f"{section}/{code}").status_code == 404
    assert env.sim.items(env.person.orcid, section) == []


def test_stored_items_keep_the_submitted_xml(env):
    body = work_xml(doi="10.1000/kept")
    code = put_code_of(env.api.post("work", body))
    [item] = env.sim.items(env.person.orcid, "work")
    assert item.put_code == code and item.xml == body.decode() and item.client_id == env.client.client_id


def test_json_reads(env):
    code = put_code_of(env.api.post("work", work_xml(date=date_xml("publication-date"))))
    work = env.api.get(f"work/{code}", accept="application/vnd.orcid+json")
    assert work.status_code == 200 and work.headers["Content-Type"].startswith("application/vnd.orcid+json")
    body = work.json()
    assert body["put-code"] == code and body["title"]["title"]["value"] == "A small work"
    assert body["publication-date"]["month"]["value"] == "03"
    assert body["external-ids"]["external-id"][0]["external-id-value"] == "10.1000/one"
    works = env.api.get("works", accept="application/json").json()
    assert works["group"][0]["work-summary"][0]["put-code"] == code
    employment = put_code_of(env.api.post("employment", affiliation_xml()))
    group = env.api.get("employments", accept="application/json").json()["affiliation-group"][0]
    summary = group["summaries"][0]["employment-summary"]
    assert summary["put-code"] == employment and summary["organization"]["address"]["country"] == "PT"


def test_unacceptable_accept_is_406_and_json_bodies_are_415(env):
    assert env.api.get("works", accept="text/csv").status_code == 406
    response = requests.post(
        env.api.url("work"),
        json={"title": {"title": {"value": "x"}}},
        headers={"Authorization": f"Bearer {env.token.access_token}"},
        timeout=5,
    )
    assert response.status_code == 415


def test_application_xml_is_accepted_for_writes_and_reads(env):
    headers = {"Authorization": f"Bearer {env.token.access_token}", "Content-Type": "application/xml"}
    response = requests.post(env.api.url("work"), data=work_xml(), headers=headers, timeout=5)
    assert response.status_code == 201
    read = env.api.get(f"work/{put_code_of(response)}", accept="application/xml")
    assert read.headers["Content-Type"].startswith("application/xml")


def test_works_summary_groups_and_lists_put_codes_and_external_ids(env):
    first = put_code_of(env.api.post("work", work_xml(doi="10.1000/a")))
    second = put_code_of(env.api.post("work", work_xml(doi="10.1000/b")))
    other = env.sim.register_client(name="Other")
    token = env.sim.issue_token(other.client_id, env.person.orcid)
    third = put_code_of(env.api.post("work", work_xml(doi="10.1000/a"), token=token.access_token))
    response = env.api.get("works")
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    assert root.tag == "{http://www.orcid.org/ns/activities}works"
    groups = root.findall("{*}group")
    assert len(groups) == 2
    codes = [[int(s.get("put-code")) for s in g.findall("{*}work-summary")] for g in groups]
    assert codes == [[first, third], [second]]
    assert groups[0].findtext("{*}external-ids/{*}external-id/{*}external-id-value") == "10.1000/a"
    summary = groups[1].find("{*}work-summary")
    assert summary.findtext("{*}title/{*}title") == "A small work"
    assert summary.findtext("{*}external-ids/{*}external-id/{*}external-id-type") == "doi"


def test_affiliation_and_activities_summaries(env):
    employment = put_code_of(env.api.post("employment", affiliation_xml("employment")))
    education = put_code_of(env.api.post("education", affiliation_xml("education")))
    work = put_code_of(env.api.post("work", work_xml()))
    employments = etree.fromstring(env.api.get("employments").content)
    summary = employments.find("{*}affiliation-group/{*}employment-summary")
    assert int(summary.get("put-code")) == employment
    educations = etree.fromstring(env.api.get("educations").content)
    assert int(educations.find("{*}affiliation-group/{*}education-summary").get("put-code")) == education
    activities = etree.fromstring(env.api.get("activities").content)
    assert activities.find("{*}works/{*}group/{*}work-summary").get("put-code") == str(work)
    assert activities.find("{*}employments/{*}affiliation-group/{*}employment-summary") is not None


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared ORCID schemas not available")
def test_read_responses_are_valid_against_the_orcid_schemas(env):
    env.api.post("employment", affiliation_xml("employment"))
    env.api.post("education", affiliation_xml("education"))
    code = put_code_of(env.api.post("work", work_xml(date=date_xml("publication-date"))))
    for path, xsd in [("activities", "activities"), ("works", "activities"), (f"work/{code}", "work")]:
        schema = etree.XMLSchema(etree.parse(str(SHARED / "record_3.0" / f"{xsd}-3.0.xsd")))
        assert schema.validate(etree.fromstring(env.api.get(path).content)), schema.error_log


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared ORCID samples not available")
@pytest.mark.parametrize(
    ("section", "sample"),
    [
        ("work", "work-simple-3.0.xml"),
        ("work", "work-full-3.0.xml"),
        ("employment", "employment-3.0.xml"),
        ("education", "education-3.0.xml"),
    ],
)
def test_orcid_write_samples_are_accepted(env, section, sample):
    response = env.api.post(section, (SAMPLES / sample).read_bytes())
    assert response.status_code == 201, response.text
    assert env.api.get(f"{section}/{put_code_of(response)}").status_code == 200


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared ORCID samples not available")
@pytest.mark.parametrize(
    ("section", "sample", "old", "new", "code"),
    [
        ("work", "work-full-3.0.xml", b"<common:month>10</common:month>", b"<common:month>9</common:month>", 9049),
        ("work", "work-simple-3.0.xml", b">self<", b">part-of<", 9023),
        ("work", "work-simple-3.0.xml", b"journal-article", b"article", 9037),
        (
            "employment",
            "employment-3.0.xml",
            b"<common:disambiguation-source>ROR",
            b"<common:disambiguation-source>X",
            9045,
        ),
        ("education", "education-3.0.xml", b"<common:city>common:city</common:city>", b"", 9060),
    ],
)
def test_broken_orcid_samples_get_the_orcid_error_code(env, section, sample, old, new, code):
    body = (SAMPLES / sample).read_bytes()
    assert old in body
    response = env.api.post(section, body.replace(old, new))
    assert response.status_code == 400 and error_of(response)["error-code"] == str(code)


def test_work_type_alias_is_stored_under_its_canonical_name(env):
    code = put_code_of(env.api.post("work", work_xml(work_type="dataset")))
    assert "<work:type>data-set</work:type>" in env.api.get(f"work/{code}").text


# ---- validation errors -----------------------------------------------------------------------------------------


VALIDATION_CASES = [
    ("work", work_xml(work_type="journal_article"), 9037),
    ("work", work_xml(doi=None), 9023),
    ("work", work_xml(ids=ext_id("10.1/x", relationship="part-of")), 9023),
    ("work", work_xml(ids=ext_id("10.1/x", id_type="no-such-type")), 9023),
    ("work", work_xml(ids=ext_id("10.1/x", relationship="funded-by")), 9023),
    ("work", work_xml(date=date_xml("publication-date", month="3", day=None)), 9049),
    ("work", work_xml(date=date_xml("publication-date", month="03", day="7")), 9049),
    ("work", work_xml(date=date_xml("publication-date", month="02", day="30")), 9049),
    ("work", work_xml(put_code=123), 9024),
    ("employment", affiliation_xml(name=None), 9046),
    ("employment", affiliation_xml(city=None), 9060),
    ("education", affiliation_xml("education", country=None), 9060),
    ("employment", affiliation_xml(org_id=None), 9045),
    ("employment", affiliation_xml(source="WIKIDATA"), 9045),
    ("employment", affiliation_xml(start=date_xml("start-date", "2020"), end=date_xml("end-date", "2019")), 9055),
    ("education", affiliation_xml("education", start=date_xml("start-date", "2020", "13")), 9001),
    ("work", b"<work:work this is not xml", 9001),
]


@pytest.mark.parametrize(("section", "body", "code"), VALIDATION_CASES)
def test_invalid_documents_get_400_with_the_orcid_error_code(env, section, body, code):
    if code == 9001 and b"month>13" in body and env.sim.schema_dir is None:
        pytest.skip("needs the XSDs")
    response = env.api.post(section, body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["response-code"] == "400" and error["error-code"] == str(code)
    assert error["developer-message"] and error["user-message"] and error["more-info"]
    assert env.sim.items(env.person.orcid) == []


def test_server_rules_apply_without_the_xsds(env):
    env.sim.schema_dir = None
    assert error_of(env.api.post("work", work_xml(title="")))["error-code"] == "9022"
    assert env.api.post("work", work_xml()).status_code == 201


def test_schema_violations_are_rejected_and_the_error_body_is_schema_valid(env):
    if env.sim.schema_dir is None:
        pytest.skip("shared ORCID schemas not available")
    body = work_xml().replace(b"</work:work>", b"<work:colour>red</work:colour></work:work>")
    response = env.api.post("work", body)
    assert response.status_code == 400 and error_of(response)["error-code"] == "9001"
    schema = etree.XMLSchema(etree.parse(str(env.sim.schema_dir / "record_3.0" / "error-3.0.xsd")))
    assert schema.validate(etree.fromstring(response.content))


def test_error_body_elements_come_in_orcid_order(env):
    root = etree.fromstring(env.api.post("work", work_xml(put_code=5)).content)
    names = [etree.QName(child).localname for child in root]
    assert names == ["response-code", "developer-message", "user-message", "error-code", "more-info"]


def test_errors_are_json_when_json_is_accepted(env):
    response = env.api.post("work", work_xml(put_code=5), accept="application/vnd.orcid+json")
    assert response.status_code == 400 and response.json()["error-code"] == 9024


def test_put_with_a_different_put_code_is_400_9019(env):
    code = put_code_of(env.api.post("work", work_xml()))
    response = env.api.put(f"work/{code}", work_xml(put_code=code + 1))
    assert response.status_code == 400 and error_of(response)["error-code"] == "9019"
    assert env.api.put(f"work/{code}", work_xml()).status_code == 400


def bulk_xml(*works: bytes) -> bytes:
    inner = b"".join(works)
    return b'<bulk:bulk xmlns:bulk="http://www.orcid.org/ns/bulk">' + inner + b"</bulk:bulk>"


def test_bulk_post_answers_each_work_with_the_saved_work_or_an_error(env):
    body = bulk_xml(work_xml(doi="10.1/a"), work_xml(doi="10.1/a"), work_xml(work_type="poem"), work_xml(doi="10.1/b"))
    response = env.api.post("works", body)
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    kinds = [etree.QName(child).localname for child in root]
    assert kinds == ["work", "error", "error", "work"]
    first = int(root[0].get("put-code"))
    assert root[1].findtext(f"{ERR}error-code") == "9021" and f"put-code {first}" in root[1].findtext(
        f"{ERR}developer-message"
    )
    assert root[2].findtext(f"{ERR}error-code") == "9037"
    assert len(env.sim.items(env.person.orcid, "work")) == 2
    if SHARED.is_dir():
        schema = etree.XMLSchema(etree.parse(str(SHARED / "record_3.0" / "bulk-3.0.xsd")))
        assert schema.validate(root), schema.error_log


def test_bulk_post_over_100_works_is_400(env):
    body = bulk_xml(*(work_xml(doi=f"10.1/{i}") for i in range(101)))
    response = env.api.post("works", body)
    assert response.status_code == 400 and error_of(response)["error-code"] == "9006"
    assert env.sim.items() == []


def test_bulk_read_returns_works_and_errors_in_order(env):
    first = put_code_of(env.api.post("work", work_xml(doi="10.1/a")))
    second = put_code_of(env.api.post("work", work_xml(doi="10.1/b")))
    root = etree.fromstring(env.api.get(f"works/{first},999999,{second}").content)
    assert [etree.QName(c).localname for c in root] == ["work", "error", "work"]
    assert [root[0].get("put-code"), root[2].get("put-code")] == [str(first), str(second)]
    body = env.api.get(f"works/{first}", accept="application/json").json()
    assert body["bulk"][0]["work"]["put-code"] == first


def test_a_record_holds_at_most_max_works(env):
    env.sim.max_works = 2
    assert env.api.post("work", work_xml(doi="10.1/a")).status_code == 201
    assert env.api.post("work", work_xml(doi="10.1/b")).status_code == 201
    response = env.api.post("work", work_xml(doi="10.1/c"))
    assert response.status_code == 409 and error_of(response)["error-code"] == "9048"
    assert env.api.post("employment", affiliation_xml()).status_code == 201


def test_put_may_not_change_visibility(env):
    code = put_code_of(env.api.post("work", work_xml()))
    body = work_xml(put_code=code).replace(b"<work:work ", b'<work:work visibility="private" ')
    response = env.api.put(f"work/{code}", body)
    assert response.status_code == 403 and error_of(response)["error-code"] == "9035"
    same = work_xml(put_code=code).replace(b"<work:work ", b'<work:work visibility="public" ')
    assert env.api.put(f"work/{code}", same).status_code == 200


# ---- conflicts, scopes, not found ------------------------------------------------------------------------------


def test_duplicate_self_external_id_is_409_naming_the_existing_put_code(env):
    code = put_code_of(env.api.post("work", work_xml(doi="10.1000/dup")))
    response = env.api.post("work", work_xml(doi="https://doi.org/10.1000/DUP", title="Same DOI"))
    assert response.status_code == 409
    error = error_of(response)
    assert error["error-code"] == "9021"
    assert f"put-code {code}." in error["developer-message"]
    assert error["developer-message"].startswith("409 Conflict: You have already added this activity")
    assert re.search(r"put-code (\d+)", error["developer-message"]).group(1) == str(code)
    assert "IOI Test" in error["user-message"]


def test_same_external_id_from_another_client_or_section_is_not_a_conflict(env):
    env.api.post("work", work_xml(doi="10.1000/shared"))
    other = env.sim.register_client()
    token = env.sim.issue_token(other.client_id, env.person.orcid)
    assert env.api.post("work", work_xml(doi="10.1000/shared"), token=token.access_token).status_code == 201
    ids = ext_id("E-1", id_type="source-work-id")
    employment = affiliation_xml().replace(b"</employment:employment>", b"")
    body = employment + f"<common:external-ids>{ids}</common:external-ids></employment:employment>".encode()
    assert env.api.post("employment", body).status_code == 201
    education = body.replace(b"employment:employment", b"education:education")
    assert env.api.post("education", education).status_code == 201
    assert env.api.post("employment", body).status_code == 409


def test_put_that_collides_with_another_item_is_409(env):
    first = put_code_of(env.api.post("work", work_xml(doi="10.1000/a")))
    second = put_code_of(env.api.post("work", work_xml(doi="10.1000/b")))
    response = env.api.put(f"work/{second}", work_xml(doi="10.1000/a", put_code=second))
    assert response.status_code == 409 and f"put-code {first}" in error_of(response)["developer-message"]
    assert env.api.put(f"work/{second}", work_xml(doi="10.1000/b", put_code=second)).status_code == 200


def test_missing_update_scope_is_403_9038(env):
    reader = env.sim.issue_token(env.client.client_id, env.person.orcid, "/read-limited")
    response = env.api.post("work", work_xml(), token=reader.access_token)
    assert response.status_code == 403 and error_of(response)["error-code"] == "9038"
    assert env.api.get("works", token=reader.access_token).status_code == 200


def test_token_for_another_record_is_401(env):
    other = env.sim.create_researcher("Grace", "Hopper")
    response = Api(env.url, other.orcid, env.token.access_token).get("works")
    assert response.status_code == 401 and error_of(response)["error-code"] == "9017"


def test_unknown_orcid_section_or_put_code_is_404(env):
    code = put_code_of(env.api.post("work", work_xml()))
    assert Api(env.url, "0000-0002-1825-0097", env.token.access_token).get("works").status_code == 404
    assert env.api.get("work/999999").status_code == 404
    assert error_of(env.api.get("work/999999"))["error-code"] == "9016"
    assert env.api.get(f"employment/{code}").status_code == 404
    assert env.api.delete("work/999999").status_code == 404
    assert env.api.put("work/999999", work_xml(put_code=999999)).status_code == 404
    assert env.api.get("fundings").status_code == 404


def test_only_the_source_client_may_change_or_delete_an_item(env):
    code = put_code_of(env.api.post("work", work_xml()))
    other = env.sim.register_client()
    token = env.sim.issue_token(other.client_id, env.person.orcid).access_token
    assert error_of(env.api.delete(f"work/{code}", token=token))["error-code"] == "9010"
    response = env.api.put(f"work/{code}", work_xml(put_code=code), token=token)
    assert response.status_code == 403 and error_of(response)["error-code"] == "9010"


# ---- rate limit ------------------------------------------------------------------------------------------------


def test_requests_beyond_the_burst_get_503_per_client(env):
    env.sim.set_rate_limit(0.001, burst=5)
    statuses = [env.api.get("works").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [503] * 2
    other = env.sim.register_client()
    other_token = env.sim.issue_token(other.client_id, env.person.orcid).access_token
    assert env.api.get("works", token=other_token).status_code == 200


def test_default_rate_limit_allows_a_burst_of_40_then_24_per_second(env):
    now = [1000.0]
    env.sim.limiter = TokenBucket(24.0, 40, clock=lambda: now[0])  # the defaults, on a clock the test moves
    session = requests.Session()
    api = Api(env.url, env.person.orcid, env.token.access_token, session)
    assert [api.get("works").status_code for _ in range(41)] == [200] * 40 + [503]
    now[0] += 0.5
    assert [api.get("works").status_code for _ in range(13)] == [200] * 12 + [503]
    assert OrcidSimulator().limiter.rate == 24.0 and OrcidSimulator().limiter.burst == 40


# ---- fault injection and call log ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 401, 404, 409])
def test_fail_next_injects_the_status_once(env, status):
    env.sim.fail_next(1, status, put_code=77)
    response = env.api.get("works")
    assert response.status_code == status
    if status == 401:
        assert response.json() == {
            "error": "invalid_token",
            "error_description": f"Invalid access token: {env.token.access_token}",
        }
    if status == 409:
        assert "put-code 77" in error_of(response)["developer-message"]
    assert env.api.get("works").status_code == 200


def test_fail_next_matches_method_and_path(env):
    env.sim.fail_next(2, 500, method="POST", path=r"/work$")
    assert env.api.get("works").status_code == 200
    assert env.api.post("work", work_xml(doi="10.1/a")).status_code == 500
    assert env.api.post("work", work_xml(doi="10.1/b")).status_code == 500
    assert env.api.post("work", work_xml(doi="10.1/c")).status_code == 201
    assert env.sim.faults.pending == 0


def test_faults_apply_to_the_token_endpoint_too(env):
    env.sim.fail_next(1, 503, path="^/oauth/token")
    code = get_code(env)
    assert exchange(env, code).status_code == 503
    assert exchange(env, code).status_code == 200


def test_timeout_fault_drops_the_connection_after_sleeping(env):
    env.sim.timeout_next(1, seconds=0.4)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(env.api.url("works"), headers=env.api.headers(), timeout=0.2)
    env.sim.timeout_next(1, seconds=0.05)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(env.api.url("works"), headers=env.api.headers(), timeout=2)
    assert requests.get(env.api.url("works"), headers=env.api.headers(), timeout=2).status_code == 200
    deadline = time.monotonic() + 2
    while sum(c.status is None for c in env.sim.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)  # let the first dropped call finish so it cannot leak into the next test
    assert [c.status for c in env.sim.calls].count(None) == 2


def test_delay_fault_and_latency_slow_responses_down(env):
    env.sim.timeout_next(1, seconds=0.2, drop=False)
    response = env.api.get("works")
    assert response.status_code == 200 and response.elapsed.total_seconds() >= 0.2
    env.sim.add_latency(0.1)
    assert env.api.get("works").elapsed.total_seconds() >= 0.1
    env.sim.add_latency(0)


def test_truncated_body(env):
    env.sim.truncate_next(1, keep=20)
    response = env.api.get("works")
    assert response.status_code == 200 and len(response.content) == 20
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)


def test_random_failures_are_reproducible_with_a_seed(env):
    def run() -> list[int]:
        env.sim.fail_randomly(0.5, seed=42, statuses=[500, 503])
        return [env.api.get("works").status_code for _ in range(12)]

    first, second = run(), run()
    assert first == second
    assert {500, 503} & set(first) and 200 in first
    env.sim.clear_faults()
    assert env.api.get("works").status_code == 200


def test_call_log_records_method_path_status_and_client(env):
    env.sim.clear_calls()
    env.api.get("works")
    env.sim.fail_next(1, 503)
    env.api.post("work", work_xml())
    env.api.get("work/1")
    calls = [(c.method, c.path, c.status, c.client_id) for c in env.sim.calls]
    base = f"/v3.0/{env.person.orcid}"
    cid = env.client.client_id
    assert calls == [
        ("GET", f"{base}/works", 200, cid),
        ("POST", f"{base}/work", 503, cid),
        ("GET", f"{base}/work/1", 404, cid),
    ]


def test_admin_endpoints_inject_faults_and_list_calls(env):
    requests.post(f"{env.url}/_sandbox/faults", json={"kind": "status", "status": 500, "n": 1}, timeout=5)
    assert env.api.get("works").status_code == 500
    calls = requests.get(f"{env.url}/_sandbox/calls", timeout=5).json()
    assert calls[-1]["status"] == 500 and calls[-1]["path"].endswith("/works")
    env.api.post("work", work_xml(doi="10.1/state"))
    state = requests.get(f"{env.url}/_sandbox/state", timeout=5).json()
    assert state["researchers"][0]["orcid"] == env.person.orcid
    assert "client_secret" not in state["clients"][0] and state["tokens"]["active"] == 1
    assert "10.1/state" in state["items"][0]["xml"]
    requests.post(f"{env.url}/_sandbox/faults", json={"kind": "status", "status": 503}, timeout=5)
    assert requests.delete(f"{env.url}/_sandbox/faults", timeout=5).status_code == 204
    assert env.api.get("works").status_code == 200


# ---- state, iDs, threads ---------------------------------------------------------------------------------------


def test_helpers_expose_state(env):
    assert [r.orcid for r in env.sim.researchers] == [env.person.orcid]
    assert is_valid_orcid(env.person.orcid)
    assert re.fullmatch(r"APP-[0-9A-Z]{16}", env.client.client_id)
    assert env.sim.tokens[0].access_token == env.token.access_token and env.sim.tokens[0].scope == SCOPE
    assert all(is_valid_orcid(env.sim.create_researcher().orcid) for _ in range(20))


def test_concurrent_writes_get_distinct_put_codes(env):
    results: list[int] = []

    def post(i: int) -> None:
        api = Api(env.url, env.person.orcid, env.token.access_token)  # a session per thread
        response = api.post("work", work_xml(doi=f"10.1000/t{i}"))
        results.append(response.status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [201] * 12
    codes = [i.put_code for i in env.sim.items(env.person.orcid, "work")]
    assert len(set(codes)) == 12
