"""OrcidClient against small scripted WSGI apps on loopback: exact statuses, headers and delays."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from werkzeug.wrappers import Request, Response

from ioi.clients.orcid import (
    OrcidBadRequest,
    OrcidClient,
    OrcidConflict,
    OrcidError,
    OrcidForbidden,
    OrcidNotFound,
    OrcidTokenInvalid,
    OrcidUnavailable,
    TokenBucket,
)
from ioi.orcid_documents import WorkSummary
from ioi.sandbox.server import BackgroundServer

ORCID = "0000-0002-1825-0097"
TOKEN = "3f0d4c61-9a5e-4b6e-8f5e-0c1d2e3f4a5b"
REFRESH = "77e0d3c2-1b4a-4c8e-9d1f-2a3b4c5d6e7f"
SECRET = "client-secret-6a1b2c3d4e5f"
CLIENT_ID = "APP-0123456789ABCDEF"
WORK = b'<work:work xmlns:work="http://www.orcid.org/ns/work"/>'
XML = {"Content-Type": "application/vnd.orcid+xml;charset=UTF-8"}
JSON = {"Content-Type": "application/json;charset=UTF-8"}


@dataclass
class Reply:
    status: int
    body: str | bytes = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str]


class Scripted:
    """A WSGI app answering from a queue of replies and recording every request."""

    def __init__(self):
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        form = dict(request.form) if request.mimetype == "application/x-www-form-urlencoded" else {}
        with self._lock:
            self.seen.append(Seen(request.method, request.path, dict(request.headers), body, form))
            reply = self.replies.pop(0) if self.replies else Reply(500, "nothing scripted")
        if reply.delay:
            time.sleep(reply.delay)
        return Response(reply.body, status=reply.status, headers=reply.headers)(environ, start_response)


def error_json(status: int, message: str, code: int) -> str:
    return json.dumps({"response-code": status, "developer-message": message, "error-code": code})


def error_xml(status: int, message: str, code: int) -> str:
    return (
        '<error:error xmlns:error="http://www.orcid.org/ns/error">'
        f"<error:response-code>{status}</error:response-code>"
        f"<error:developer-message>{message}</error:developer-message>"
        f"<error:error-code>{code}</error:error-code></error:error>"
    )


@pytest.fixture(scope="module")
def servers():
    api, oauth = Scripted(), Scripted()
    with BackgroundServer(api) as api_server, BackgroundServer(oauth) as oauth_server:
        yield api, oauth, api_server.url, oauth_server.url


@pytest.fixture
def api(servers):
    servers[0].replies.clear()
    servers[0].seen.clear()
    return servers[0]


@pytest.fixture
def oauth(servers):
    servers[1].replies.clear()
    servers[1].seen.clear()
    return servers[1]


@pytest.fixture
def calls():
    return []


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(servers, api, oauth, calls, sleeps):
    _, _, api_url, oauth_url = servers
    with OrcidClient(
        f"{api_url}/v3.0/",
        f"{oauth_url}/oauth/token",
        f"{oauth_url}/oauth/revoke",
        CLIENT_ID,
        SECRET,
        timeout=(1.0, 0.3),
        max_attempts=3,
        backoff=0.01,
        max_retry_after=5.0,
        rate=1000.0,
        burst=1000,
        on_call=lambda *report: calls.append(report),
        sleep=sleeps.append,
    ) as orcid_client:
        yield orcid_client


# ------------------------------------------------------------------------------ success


def test_add_posts_xml_with_bearer_token_and_returns_put_code_from_location(client, api, calls):
    api.replies.append(Reply(201, headers={"Location": f"http://x/v3.0/{ORCID}/work/733536"}))
    assert client.add(ORCID, TOKEN, "work", WORK) == "733536"
    (seen,) = api.seen
    assert (seen.method, seen.path, seen.body) == ("POST", f"/v3.0/{ORCID}/work", WORK)
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Content-Type"] == seen.headers["Accept"] == "application/vnd.orcid+xml"
    (report,) = calls
    assert report[:3] == ("POST", f"{client.api_url}/{ORCID}/work", 201) and report[3] >= 0


def test_add_without_a_put_code_in_location_is_an_error(client, api):
    api.replies.append(Reply(201))
    with pytest.raises(OrcidError, match="Location"):
        client.add(ORCID, TOKEN, "employment", WORK)


def test_update_delete_and_read(client, api):
    api.replies += [Reply(200, b"<updated/>", XML), Reply(204), Reply(200, b"<one/>", XML)]
    assert client.update(ORCID, TOKEN, "education", 12, WORK) == b"<updated/>"
    assert client.delete(ORCID, TOKEN, "work", "13") is None
    assert client.read(ORCID, TOKEN, "work", "14") == b"<one/>"
    assert [(s.method, s.path) for s in api.seen] == [
        ("PUT", f"/v3.0/{ORCID}/education/12"),
        ("DELETE", f"/v3.0/{ORCID}/work/13"),
        ("GET", f"/v3.0/{ORCID}/work/14"),
    ]
    assert api.seen[0].body == WORK


def test_read_works_returns_put_codes_with_self_ids(client, api):
    summary = (
        '<activities:works xmlns:activities="http://www.orcid.org/ns/activities" '
        'xmlns:common="http://www.orcid.org/ns/common" xmlns:work="http://www.orcid.org/ns/work">'
        '<activities:group><work:work-summary put-code="7"><common:source><common:source-client-id>'
        f"<common:path>{CLIENT_ID}</common:path></common:source-client-id></common:source>"
        "<common:external-ids><common:external-id><common:external-id-type>doi</common:external-id-type>"
        "<common:external-id-value>10.1/a</common:external-id-value>"
        "<common:external-id-relationship>self</common:external-id-relationship></common:external-id>"
        "</common:external-ids></work:work-summary></activities:group></activities:works>"
    )
    api.replies.append(Reply(200, summary, XML))
    assert client.read_works(ORCID, TOKEN) == [WorkSummary("7", CLIENT_ID, (("doi", "10.1/a"),))]
    assert api.seen[0].path == f"/v3.0/{ORCID}/works"


@pytest.mark.parametrize(
    ("orcid", "section", "put_code"),
    [("0000-0002-1825-0098", "work", 1), (ORCID, "funding", 1), (ORCID, "work", "1/../2")],
)
def test_bad_arguments_never_reach_orcid(client, api, orcid, section, put_code):
    with pytest.raises(ValueError):
        client.delete(orcid, TOKEN, section, put_code)
    assert api.seen == []


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("reply", "exception", "error_code"),
    [
        (Reply(401, json.dumps({"error": "invalid_token", "error_description": "Invalid access token"}), JSON),
         OrcidTokenInvalid, None),
        (Reply(401, error_xml(401, "Access token is for a different record", 9017), XML), OrcidTokenInvalid, 9017),
        (Reply(400, json.dumps({"error": "invalid_scope", "error_description": "Invalid scope"}), JSON),
         OrcidTokenInvalid, None),
        (Reply(403, error_xml(403, "403 Forbidden: insufficient scope", 9038), XML), OrcidForbidden, 9038),
        (Reply(404, error_json(404, "404 Not Found: The resource was not found.", 9016), JSON), OrcidNotFound, 9016),
        (Reply(400, error_xml(400, "Put-code is not allowed on POST", 9024), XML), OrcidBadRequest, 9024),
        (Reply(406, "Not Acceptable"), OrcidError, None),
        (Reply(301, error_json(301, "Deprecated iD", 9007), JSON), OrcidError, 9007),
    ],
    ids=["401-token", "401-other-record", "400-scope", "403", "404", "400", "406", "301"],
)  # fmt: skip
def test_each_error_status_raises_its_exception(client, api, reply, exception, error_code):
    api.replies.append(reply)
    with pytest.raises(OrcidError) as caught:
        client.add(ORCID, TOKEN, "work", WORK)
    assert type(caught.value) is exception
    assert caught.value.status == reply.status and caught.value.error_code == error_code
    assert len(api.seen) == 1  # client errors are never retried


def test_bad_request_carries_orcids_developer_message(client, api):
    api.replies.append(Reply(400, error_xml(400, "Invalid month 3 please specify a two digits value", 9049), XML))
    with pytest.raises(OrcidBadRequest) as caught:
        client.update(ORCID, TOKEN, "work", 5, WORK)
    assert caught.value.developer_message == "Invalid month 3 please specify a two digits value"
    assert "Invalid month 3" in str(caught.value)


def test_conflict_carries_the_existing_put_code(client, api):
    message = (
        "409 Conflict: You have already added this activity (matched by external identifiers), please see element "
        "with put-code 4242. If you are trying to edit the item, please use PUT instead of POST."
    )
    api.replies += [Reply(409, error_json(409, message, 9021), JSON), Reply(409, error_xml(409, "Conflict", 9021), XML)]
    with pytest.raises(OrcidConflict) as caught:
        client.add(ORCID, TOKEN, "work", WORK)
    assert caught.value.put_code == "4242" and caught.value.error_code == 9021
    with pytest.raises(OrcidConflict) as caught:
        client.add(ORCID, TOKEN, "work", WORK)
    assert caught.value.put_code is None


# ------------------------------------------------------------------------------ retries


def test_transient_failures_are_retried_with_exponential_backoff(client, api, calls, sleeps):
    api.replies += [Reply(503), Reply(502), Reply(201, headers={"Location": f"/v3.0/{ORCID}/work/9"})]
    assert client.add(ORCID, TOKEN, "work", WORK) == "9"
    assert sleeps == [0.01, 0.02]
    assert [report[2] for report in calls] == [503, 502, 201]


def test_retry_after_is_honoured(client, api, sleeps):
    api.replies += [Reply(503, headers={"Retry-After": "2"}), Reply(429, headers={"Retry-After": "0"}), Reply(204)]
    client.delete(ORCID, TOKEN, "work", 1)
    assert sleeps == [2.0, 0.0]


def test_retry_after_longer_than_allowed_gives_up_at_once(client, api, sleeps):
    api.replies.append(Reply(503, headers={"Retry-After": "3600"}))
    with pytest.raises(OrcidUnavailable) as caught:
        client.delete(ORCID, TOKEN, "work", 1)
    assert caught.value.retry_after == 3600 and caught.value.status == 503
    assert len(api.seen) == 1 and sleeps == []


def test_exhausted_retries_raise_unavailable(client, api, sleeps):
    api.replies += [Reply(500), Reply(503), Reply(504), Reply(201)]
    with pytest.raises(OrcidUnavailable) as caught:
        client.add(ORCID, TOKEN, "work", WORK)
    assert caught.value.status == 504
    assert len(api.seen) == 3 and len(sleeps) == 2


def test_read_timeouts_are_retried_then_unavailable(client, api, calls):
    api.replies += [Reply(200, delay=1.0)] * 3
    with pytest.raises(OrcidUnavailable, match="ReadTimeout"):
        client.read(ORCID, TOKEN, "work", 1)
    assert len(api.seen) == 3
    assert [report[2] for report in calls] == [None, None, None]


def test_timeout_then_success(client, api):
    api.replies += [Reply(200, delay=1.0), Reply(200, b"<ok/>")]
    assert client.read(ORCID, TOKEN, "work", 1) == b"<ok/>"


def test_connection_refused_is_retried_then_unavailable(calls, sleeps):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    dead = OrcidClient(
        url,
        url,
        url,
        CLIENT_ID,
        SECRET,
        max_attempts=2,
        backoff=0.01,
        on_call=lambda *r: calls.append(r),
        sleep=sleeps.append,
    )
    with pytest.raises(OrcidUnavailable, match="ConnectionError"):
        dead.delete(ORCID, TOKEN, "work", 1)
    assert len(calls) == 2 and sleeps == [0.01]


# -------------------------------------------------------------------------------- OAuth


def test_exchange_code_posts_the_form_to_the_token_url(client, api, oauth):
    token = {"access_token": TOKEN, "token_type": "bearer", "refresh_token": REFRESH, "expires_in": 631138518,
             "scope": "/read-limited /activities/update", "name": "Josiah Carberry", "orcid": ORCID}  # fmt: skip
    oauth.replies.append(Reply(200, json.dumps(token), JSON))
    assert client.exchange_code("Wkiy7n", "https://ioi.example.edu/orcid") == token
    (seen,) = oauth.seen
    assert (seen.method, seen.path, seen.headers["Accept"]) == ("POST", "/oauth/token", "application/json")
    assert seen.form == {
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "grant_type": "authorization_code",
        "code": "Wkiy7n",
        "redirect_uri": "https://ioi.example.edu/orcid",
    }
    assert api.seen == []


def test_exchange_code_is_not_retried_after_it_may_have_reached_orcid(client, oauth):
    oauth.replies += [Reply(200, "{}", JSON, delay=1.0), Reply(200, "{}", JSON)]
    with pytest.raises(OrcidUnavailable):
        client.exchange_code("Wkiy7n", "https://ioi.example.edu/orcid")
    assert len(oauth.seen) == 1


def test_exchange_code_retries_a_rate_limit_rejection(client, oauth):
    oauth.replies += [Reply(503), Reply(200, json.dumps({"access_token": TOKEN}), JSON)]
    assert client.exchange_code("Wkiy7n", "https://ioi.example.edu/orcid")["access_token"] == TOKEN


def test_bad_code_is_a_bad_request(client, oauth):
    oauth.replies.append(
        Reply(400, json.dumps({"error": "invalid_grant", "error_description": "Invalid authorization code: x"}), JSON)
    )
    with pytest.raises(OrcidBadRequest) as caught:
        client.exchange_code("x", "https://ioi.example.edu/orcid")
    assert caught.value.oauth_error == "invalid_grant"


def test_refresh_and_refused_refresh_token(client, oauth):
    oauth.replies += [
        Reply(200, json.dumps({"access_token": "new", "refresh_token": "newer"}), JSON),
        Reply(
            400, json.dumps({"error": "invalid_grant", "error_description": f"Invalid refresh token: {REFRESH}"}), JSON
        ),
    ]
    assert client.refresh(REFRESH, scope="/read-limited")["access_token"] == "new"
    assert oauth.seen[0].form == {
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "grant_type": "refresh_token",
        "refresh_token": REFRESH,
        "revoke_old": "false",
        "scope": "/read-limited",
    }
    with pytest.raises(OrcidTokenInvalid) as caught:
        client.refresh(REFRESH)
    assert REFRESH not in str(caught.value)


def test_revoke_goes_to_the_oauth_revoke_url_not_the_api_host(client, api, oauth):
    oauth.replies.append(Reply(200))
    client.revoke(TOKEN)
    assert api.seen == []
    (seen,) = oauth.seen
    assert (seen.method, seen.path) == ("POST", "/oauth/revoke")
    assert seen.form == {"client_id": CLIENT_ID, "client_secret": SECRET, "token": TOKEN}
    assert "Authorization" not in seen.headers


def test_no_token_or_secret_in_reports_logs_or_errors(client, api, oauth, calls, caplog):
    caplog.set_level(logging.DEBUG)
    echo = json.dumps({"error": "invalid_token", "error_description": f"Invalid access token: {TOKEN}"})
    api.replies += [Reply(201, headers={"Location": "/9"}), Reply(503), Reply(401, echo, JSON)]
    oauth.replies += [
        Reply(200, json.dumps({"access_token": TOKEN, "refresh_token": REFRESH}), JSON),
        Reply(401, json.dumps({"error": "invalid_client", "error_description": f"Bad client credentials {SECRET}"})),
        Reply(200),
    ]
    errors = []
    client.add(ORCID, TOKEN, "work", WORK)
    with pytest.raises(OrcidTokenInvalid) as caught:
        client.update(ORCID, TOKEN, "work", 9, WORK)
    errors.append(caught.value)
    client.exchange_code("Wkiy7n", "https://ioi.example.edu/orcid")
    with pytest.raises(OrcidError) as caught:
        client.refresh(REFRESH)
    assert type(caught.value) is OrcidError  # bad client credentials: a configuration problem, not a dead token
    errors.append(caught.value)
    client.revoke(TOKEN)
    seen = repr(calls) + caplog.text + repr(client) + "".join(f"{e!s} {e.developer_message}" for e in errors)
    assert len(calls) == 6 and "Invalid access token: [redacted]" in seen
    for secret in (TOKEN, REFRESH, SECRET, "Wkiy7n"):
        assert secret not in seen


def test_a_failing_audit_hook_does_not_break_the_call(client, api):
    def broken(*report):
        raise RuntimeError("audit down")

    client.on_call = broken
    api.replies.append(Reply(204))
    client.delete(ORCID, TOKEN, "work", 1)


# --------------------------------------------------------------------------- rate limit


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_token_bucket_never_exceeds_burst_plus_rate_over_any_window():
    clock = FakeClock()
    bucket = TokenBucket(rate=24, burst=40, clock=clock, sleep=clock.sleep)
    times = []
    for i in range(300):
        if i % 50 == 49:
            clock.now += 0.7  # idle gaps refill the bucket, never above the burst
        bucket.acquire()
        times.append(clock.now)
    for first in range(len(times)):
        for last in range(first, len(times)):
            assert last - first + 1 <= 40 + 24 * (times[last] - times[first]) + 1e-6
    assert times[39] == 0.0 and times[40] == pytest.approx(1 / 24)


def test_token_bucket_is_shared_safely_by_threads():
    clock = FakeClock()  # time stands still: each wait is the caller's place in the queue
    waits = []
    bucket = TokenBucket(rate=10, burst=5, clock=clock, sleep=waits.append)

    def worker():
        for _ in range(25):
            bucket.acquire()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(round(w * 10) for w in waits) == Counter(range(1, 200 - 5 + 1))


def test_every_call_of_a_client_passes_its_limiter(servers, api):
    clock = FakeClock()
    waits = []
    limiter = TokenBucket(rate=10, burst=2, clock=clock, sleep=waits.append)
    limited = OrcidClient(servers[2] + "/v3.0", "", "", CLIENT_ID, SECRET, limiter=limiter)
    api.replies += [Reply(204)] * 5
    for put_code in range(5):
        limited.delete(ORCID, TOKEN, "work", put_code)
    assert waits == pytest.approx([0.1, 0.2, 0.3])


def test_limiter_defaults_stay_under_orcids_member_limits():
    bucket = TokenBucket()
    assert bucket.rate <= 24 and bucket.burst <= 40
    with pytest.raises(ValueError):
        TokenBucket(rate=0)
