"""Client of the DSpace 5 and 6 legacy REST API (`/rest`), with the Atmire expanded-ORCID patch.

One `requests.Session`, a default (connect, read) timeout, retries with exponential backoff on 5xx
and timeouts (honouring Retry-After), an optional pause between calls (`DSPACE_REQUEST_DELAY`),
re-login when DSpace forgot the session, and one `_request()` that turns every failure into a
`DSpaceError` subclass. Every HTTP attempt is logged with method, URL, status and milliseconds;
the password, the DSpace 5 token and the DSpace 6 session id are never logged or raised.

DSpace quirks handled here (see shared specs, dspace-api.md §2): DSpace 5 logs in with JSON and
answers a bare token sent back as `rest-dspace-token`; DSpace 6 logs in with a form and answers a
`JSESSIONID` cookie. An unknown token or session is not an error: DSpace answers as anonymous, so a
lost session only shows as 401/403 on a write. An unknown handle answers 500, not 404.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({500, 502, 503, 504})
SESSION_COOKIE = re.compile(r"JSESSIONID=([^;\s]+)")
HANDLE = re.compile(r"^[\w.\-]+/[\w.\-]+$")
SUPPORTED_VERSIONS = ("5", "6")


class DSpaceError(Exception):
    """A call to DSpace failed. `status` is the HTTP status (None when no response came back)."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class DSpaceAuthError(DSpaceError):
    """Login refused, or DSpace refused a call even after logging in again (401/403)."""


class DSpaceNotFound(DSpaceError):
    """404: no such item (an unknown handle answers 500 in DSpace 5/6 and ends as DSpaceUnavailable)."""


class DSpaceUnavailable(DSpaceError):
    """DSpace kept failing (5xx, timeouts, connection errors) until the retries ran out."""


class DSpaceBadResponse(DSpaceError):
    """DSpace answered 200 with a body that is not what the call returns (malformed or cut JSON)."""


@dataclass(frozen=True)
class RestItem:
    """An item as `GET handle/{handle}?expand=metadata` returns it; `raw` is the response text as received."""

    item_id: str  # DSpace 5 numeric id, DSpace 6 uuid
    handle: str
    last_modified: str
    metadata: list[dict[str, Any]]
    raw: str


class Pacer:
    """Spaces calls at least `delay` seconds apart, across threads (no pause when `delay` is 0)."""

    def __init__(self, delay: float, sleep: Callable[[float], None] = time.sleep):
        self.delay = delay
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        if self.delay <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.delay
        if start > now:
            self._sleep(start - now)


class DSpaceClient:
    """The DSpace 5/6 REST calls IOI makes: login, handle fetch, item metadata GET/PUT, authority rename."""

    def __init__(
        self,
        rest_url: str,
        email: str,
        password: str,
        version: str | int = "6",
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        delay: float = 0.0,
        pool_size: int = 16,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = "IOI (Institutional ORCID Integration)",
    ):
        if str(version) not in SUPPORTED_VERSIONS:
            raise ValueError(f"this client speaks the DSpace 5/6 REST API, not DSpace {version}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.rest_url = rest_url.rstrip("/")
        self.email = email
        self._password = password
        self.version = str(version)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.pacer = Pacer(delay, sleep)
        self._sleep = sleep
        self._auth: dict[str, str] = {}
        self._auth_lock = threading.Lock()
        self.session = session or requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        use_environment(self.session, self.rest_url)

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> DSpaceClient:
        """A client for the configured repository (REPOSITORY_API_URL, user, password, DSPACE_VERSION, delay)."""
        options.setdefault("delay", settings.DSPACE_REQUEST_DELAY)
        api, user, password = settings.REPOSITORY_API_URL, settings.REPOSITORY_USER, settings.REPOSITORY_PW
        return cls(api, user, password, settings.DSPACE_VERSION, **options)

    def __repr__(self) -> str:
        return f"<DSpaceClient {self.rest_url} DSpace {self.version} user={self.email}>"

    def close(self) -> None:
        """Log out (best effort) and close the connections."""
        if self._auth:
            try:
                self.logout()
            except DSpaceError as exc:
                log.info("DSpace logout failed: %s", exc)
        self.session.close()

    def __enter__(self) -> DSpaceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ session

    @property
    def logged_in(self) -> bool:
        return bool(self._auth)

    def login(self) -> None:
        """Log in as REPOSITORY_USER; raises DSpaceAuthError when DSpace refuses the credentials."""
        with self._auth_lock:
            self._auth = {}
            if self.version == "5":
                response = self._request(
                    "POST", "/login", json_body={"email": self.email, "password": self._password}, relogin=False
                )
                token = response.text.strip()
                if not token or len(token) > 200 or "<" in token:
                    raise DSpaceBadResponse("DSpace 5 login answered no token", status=response.status_code)
                self._auth = {"rest-dspace-token": token}
            else:
                response = self._request(
                    "POST", "/login", form={"email": self.email, "password": self._password}, relogin=False
                )
                match = SESSION_COOKIE.search(response.headers.get("Set-Cookie", ""))
                if match is None:
                    raise DSpaceBadResponse("DSpace 6 login set no JSESSIONID cookie", status=response.status_code)
                self._auth = {"Cookie": f"JSESSIONID={match.group(1)}"}
        log.info("logged in to DSpace %s at %s as %s", self.version, self.rest_url, self.email)

    def logout(self) -> None:
        """End the session at DSpace."""
        if self._auth:
            try:
                self._request("POST", "/logout", relogin=False, attempts=1)
            finally:
                self._auth = {}

    def status(self) -> dict[str, Any]:
        """`GET status`: `authenticated`, `email`, ... (always 200)."""
        return self._get_json("/status", dict)[1]

    def _ensure_login(self) -> None:
        if not self._auth:
            self.login()

    # ------------------------------------------------------------------------------ items

    def get_item_by_handle(self, handle: str) -> RestItem:
        """`GET handle/{handle}?expand=metadata`: the item with its metadata (as an admin sees it)."""
        if not HANDLE.match(handle):
            raise ValueError(f"not a repository handle: {handle!r}")
        self._ensure_login()
        response, data = self._get_json(f"/handle/{handle}", dict, params={"expand": "metadata"})
        metadata = data.get("metadata")
        item_id = data.get("id") if self.version == "5" else data.get("uuid")
        if data.get("type") != "item" or not isinstance(metadata, list) or item_id is None:
            raise DSpaceBadResponse(f"DSpace handle/{handle}: not an item with metadata", status=response.status_code)
        if not all(isinstance(e, dict) and isinstance(e.get("key"), str) for e in metadata):
            raise DSpaceBadResponse(f"DSpace handle/{handle}: malformed metadata entries", status=response.status_code)
        return RestItem(str(item_id), handle, str(data.get("lastModified") or ""), metadata, response.text)

    def get_item_metadata(self, item_id: str) -> list[dict[str, Any]]:
        """`GET items/{id}/metadata`: the item's `{key, value, language}` entries in DSpace's order."""
        self._ensure_login()
        response, entries = self._get_json(f"/items/{quote(str(item_id))}/metadata", list)
        if not all(isinstance(e, dict) and isinstance(e.get("key"), str) for e in entries):
            raise DSpaceBadResponse(f"DSpace items/{item_id}/metadata: malformed entries", status=response.status_code)
        return entries

    def put_item_metadata(self, item_id: str, entries: list[dict[str, Any]], *, relogin: bool = True) -> None:
        """`PUT items/{id}/metadata`: DSpace deletes every value of each key sent, then appends the entries.

        Send each key with all its values in order. Only `key`, `value` and `language` are sent.
        `relogin=False` raises DSpaceAuthError on a lost session instead of logging in and re-sending,
        for callers whose entries came from a read that may have been anonymous (hidden fields missing).
        """
        body = [{"key": e["key"], "value": e["value"], "language": e.get("language")} for e in entries]
        self._ensure_login()
        self._request("PUT", f"/items/{quote(str(item_id))}/metadata", json_body=body, relogin=relogin)

    def rename_authority(self, key: str, new_name: str) -> None:
        """`PUT authorities/{key}/value` (Atmire patch): rename a person authority; DSpace gives it a new key.

        Not retried once the request may have reached DSpace: the old key is gone after a rename.
        """
        if not re.fullmatch(r"[\w\-]+", key):
            raise ValueError(f"not an authority key: {key!r}")
        self._ensure_login()
        self._request(
            "PUT",
            f"/authorities/{key}/value",
            data=new_name.encode("utf-8"),
            headers={"Content-Type": "text/plain; charset=utf-8"},
            retry_unsafe=False,
        )

    # ----------------------------------------------------------------------------- internals

    def _get_json(self, path: str, kind: type, params: dict[str, str] | None = None) -> tuple[requests.Response, Any]:
        """GET and parse JSON; a 200 with a malformed (e.g. cut) body is retried like a transient failure."""
        for attempt in range(1, self.max_attempts + 1):
            response = self._request("GET", path, params=params)
            try:
                data = json.loads(response.text)
            except ValueError:
                reason = f"malformed JSON ({len(response.content)} bytes)"
                if attempt == self.max_attempts:
                    raise DSpaceBadResponse(f"DSpace GET {path}: {reason}", status=response.status_code) from None
                self._pause(self._backoff(attempt), "GET", path, reason)
                continue
            if not isinstance(data, kind):
                raise DSpaceBadResponse(f"DSpace GET {path}: unexpected JSON", status=response.status_code)
            return response, data
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        relogin: bool = True,
        retry_unsafe: bool = True,
        attempts: int | None = None,
    ) -> requests.Response:
        """The one way out: pause, send, log, retry transient failures, log in again once, map errors."""
        url = self.rest_url + path
        attempts = attempts or self.max_attempts
        logged_in_again = False
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= attempts
            sent_auth = dict(self._auth)
            self.pacer.wait()
            started = time.perf_counter()
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=form if form is not None else data,
                    headers={**sent_auth, **(headers or {})},
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                self._log(method, url, None, started)
                reason = self._scrub(f"{type(exc).__name__}: {exc}")
                retryable = isinstance(exc, requests.ConnectTimeout) or (
                    retry_unsafe and isinstance(exc, requests.Timeout | requests.ConnectionError)
                )
                if not retryable or last:
                    raise DSpaceUnavailable(f"DSpace {method} {path} failed ({attempt} attempts): {reason}") from None
                self._pause(self._backoff(attempt), method, path, reason)
                continue

            self._log(method, url, response.status_code, started)
            status = response.status_code
            if 200 <= status < 300:
                return response
            if status in (401, 403) and path != "/login":
                if relogin and sent_auth and not logged_in_again:
                    # DSpace forgot the session (restart, expiry) and answered as anonymous: log in again once.
                    logged_in_again = True
                    log.warning("DSpace %s %s -> %s; logging in again", method, path, status)
                    self.login()
                    attempt -= 1
                    continue
                raise DSpaceAuthError(f"DSpace {status} on {method} {path}: not allowed", status=status)
            if path == "/login" and status in (400, 401, 403):
                raise DSpaceAuthError(f"DSpace {status}: login refused for {self.email}", status=status)
            if status == 404:
                raise DSpaceNotFound(f"DSpace 404 on {method} {path}", status=status)
            if status in RETRY_STATUSES and retry_unsafe and not last:
                retry_after = _retry_after(response.headers.get("Retry-After"))
                if retry_after is not None and retry_after > self.max_retry_after:
                    raise DSpaceUnavailable(f"DSpace {status}: asked to retry after {retry_after:.0f} s", status=status)
                wait = retry_after if retry_after is not None else self._backoff(attempt)
                self._pause(wait, method, path, str(status))
                continue
            if status in RETRY_STATUSES:
                raise DSpaceUnavailable(f"DSpace {status} on {method} {path} after {attempt} attempt(s)", status=status)
            raise DSpaceError(f"DSpace {status} on {method} {path}", status=status)

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2 ** (attempt - 1))

    def _pause(self, seconds: float, method: str, path: str, reason: str) -> None:
        log.warning("DSpace %s %s: %s; retrying in %.2f s", method, path, reason, seconds)
        if seconds > 0:
            self._sleep(seconds)

    def _log(self, method: str, url: str, status: int | None, started: float) -> None:
        log.info("DSpace %s %s -> %s (%d ms)", method, url, status, round((time.perf_counter() - started) * 1000))

    def _scrub(self, text: str) -> str:
        for secret in (self._password, *self._auth.values()):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text


def use_environment(session: requests.Session, url: str) -> None:
    """Apply the environment's proxy and CA bundle settings once, instead of looking them up on every call
    (requests does that per request, which costs about a millisecond each)."""
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False


def _retry_after(value: str | None) -> float | None:
    """Seconds from a delta-seconds Retry-After header (DSpace's container sends no dates), else None."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
