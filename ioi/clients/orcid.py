"""Client of the ORCID member API and OAuth endpoints.

One `requests.Session`, a default (connect, read) timeout, an outbound token-bucket rate limit,
retries with exponential backoff for transient failures (honouring Retry-After), and one
`_request()` that turns every failure into an `OrcidError` subclass. Every HTTP attempt is logged
and reported to `on_call(method, url, status, elapsed_ms)`; tokens and secrets never appear in
what is logged, reported or raised (ORCID echoes a bad token in its 401 body, so messages are
scrubbed).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from lxml import etree

from ioi.orcid_documents import NS_ERROR, WorkSummary, parse_put_code, parse_works_summary, put_code_from_conflict
from ioi.orcid_ids import is_valid_orcid

log = logging.getLogger(__name__)

ORCID_XML = "application/vnd.orcid+xml"
SECTIONS = frozenset({"work", "employment", "education"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REJECTED_UNPROCESSED = frozenset({429, 503})  # ORCID refused before doing anything (rate limit)
REDACTED = "[redacted]"

OnCall = Callable[[str, str, int | None, int], None]


class OrcidError(Exception):
    """A call to ORCID failed. `status` is the HTTP status (None when no response came back)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        developer_message: str = "",
        error_code: int | None = None,
        oauth_error: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.developer_message = developer_message
        self.error_code = error_code
        self.oauth_error = oauth_error


class OrcidTokenInvalid(OrcidError):
    """The access or refresh token is revoked, expired, for another record, or lacks the scope."""


class OrcidForbidden(OrcidError):
    """403: not the source of the item, private item, visibility change, insufficient scope."""


class OrcidNotFound(OrcidError):
    """404: no such record or item."""


class OrcidConflict(OrcidError):
    """409: duplicate of an existing item (`put_code` when ORCID names it), locked or deactivated record."""

    def __init__(self, message: str, *, put_code: str | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.put_code = put_code


class OrcidBadRequest(OrcidError):
    """400: ORCID rejected the data; `developer_message` says why."""


class OrcidUnavailable(OrcidError):
    """ORCID kept failing (5xx, 429, timeouts, connection errors) until the retries ran out, or asked
    to wait longer (`retry_after` seconds) than the client is willing to."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class TokenBucket:
    """Thread-safe token bucket: at most `burst` calls at once, then `rate` per second.

    Each caller reserves a token under the lock (the bucket may go negative: queued callers) and
    sleeps outside it, so concurrent callers are spaced out rather than woken together.
    """

    def __init__(
        self,
        rate: float = 20.0,
        burst: int = 30,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = clock()

    def acquire(self) -> float:
        """Take one token, waiting as long as needed; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class OrcidClient:
    """The ORCID member API (works, employments, educations) and OAuth token endpoints.

    Defaults stay under ORCID's member limits (24 requests/s, burst 40) with a margin, as the
    limit is counted at ORCID's end where requests arrive with jitter. The limiter is per client:
    pass one `limiter` to several clients (threads) to share it.
    """

    def __init__(
        self,
        api_url: str,
        token_url: str,
        revoke_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        rate: float = 20.0,
        burst: int = 30,
        limiter: TokenBucket | None = None,
        on_call: OnCall | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = "IOI (Institutional ORCID Integration)",
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.api_url = api_url.rstrip("/")
        self.token_url = token_url
        self.revoke_url = revoke_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.limiter = limiter or TokenBucket(rate, burst)
        self.on_call = on_call
        self._sleep = sleep
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent

    def __repr__(self) -> str:
        return f"<OrcidClient {self.api_url} client_id={self.client_id}>"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> OrcidClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------ member API

    def add(self, orcid: str, token: str, section: str, xml: bytes) -> str:
        """POST a new work/employment/education; returns its put-code (from `Location`).

        A retried POST that had in fact reached ORCID comes back as OrcidConflict with the put-code.
        """
        response = self._request(
            "POST", self._url(orcid, section), secrets=(token,), headers=self._xml_headers(token), data=xml
        )
        put_code = parse_put_code(response.headers.get("Location"))
        if put_code is None:
            raise OrcidError(
                f"ORCID {response.status_code}: no put-code in the Location header", status=response.status_code
            )
        return put_code

    def update(self, orcid: str, token: str, section: str, put_code: str | int, xml: bytes) -> bytes:
        """PUT a new version of an item (the document must carry the same put-code); returns ORCID's copy."""
        url = self._url(orcid, section, put_code)
        return self._request("PUT", url, secrets=(token,), headers=self._xml_headers(token), data=xml).content

    def delete(self, orcid: str, token: str, section: str, put_code: str | int) -> None:
        """DELETE an item this client created."""
        url = self._url(orcid, section, put_code)
        self._request("DELETE", url, secrets=(token,), headers=self._xml_headers(token))

    def read(self, orcid: str, token: str, section: str, put_code: str | int) -> bytes:
        """GET one item as ORCID 3.0 XML."""
        url = self._url(orcid, section, put_code)
        return self._request("GET", url, secrets=(token,), headers=self._xml_headers(token)).content

    def read_works(self, orcid: str, token: str) -> list[WorkSummary]:
        """GET the works summary: every work's put-code, source client and self external ids."""
        url = self._url(orcid, "works")
        response = self._request("GET", url, secrets=(token,), headers=self._xml_headers(token))
        try:
            return parse_works_summary(response.content)
        except etree.XMLSyntaxError as exc:
            raise OrcidError(f"ORCID {response.status_code}: unreadable works summary: {exc}") from None

    # ---------------------------------------------------------------------------------- OAuth

    def exchange_code(self, code: str, redirect_uri: str) -> dict:
        """Trade an authorization code for tokens: access_token, refresh_token, expires_in, scope, name, orcid.

        Not retried once the request may have reached ORCID: a reused code revokes the tokens it gave.
        """
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return self._token_call(form, secrets=(code,), retry_unsafe=False)

    def refresh(
        self, refresh_token: str, *, scope: str | None = None, revoke_old: bool = False, expires_in: int | None = None
    ) -> dict:
        """A new access token from a refresh token (same shape as `exchange_code`). A refused refresh
        token (invalid_grant) raises OrcidTokenInvalid."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "revoke_old": str(revoke_old).lower()}
        if scope:
            form["scope"] = scope
        if expires_in is not None:
            form["expires_in"] = str(expires_in)
        try:
            return self._token_call(form, secrets=(refresh_token,))
        except OrcidBadRequest as exc:
            if exc.oauth_error == "invalid_grant":
                raise OrcidTokenInvalid(
                    str(exc), status=exc.status, developer_message=exc.developer_message, oauth_error=exc.oauth_error
                ) from None
            raise

    def revoke(self, token: str) -> None:
        """Revoke an access or refresh token at the OAuth revoke URL (not the API host)."""
        data = {"client_id": self.client_id, "client_secret": self._client_secret, "token": token}
        self._request("POST", self.revoke_url, secrets=(token,), headers={"Accept": "application/json"}, data=data)

    def _token_call(self, form: dict[str, str], *, secrets: tuple[str, ...], retry_unsafe: bool = True) -> dict:
        data = {"client_id": self.client_id, "client_secret": self._client_secret, **form}
        response = self._request(
            "POST",
            self.token_url,
            secrets=secrets,
            headers={"Accept": "application/json"},
            data=data,
            retry_unsafe=retry_unsafe,
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "access_token" not in body:
            raise OrcidError(
                f"ORCID {response.status_code}: the token response is not a token", status=response.status_code
            )
        return body

    # ----------------------------------------------------------------------------- internals

    def _url(self, orcid: str, section: str, put_code: str | int | None = None) -> str:
        if not is_valid_orcid(orcid):
            raise ValueError(f"not a valid ORCID iD: {orcid!r}")
        if section not in SECTIONS and section != "works":
            raise ValueError(f"unknown ORCID section: {section!r}")
        url = f"{self.api_url}/{orcid}/{section}"
        if put_code is not None:
            if not str(put_code).isdigit():
                raise ValueError(f"not a put-code: {put_code!r}")
            url += f"/{put_code}"
        return url

    @staticmethod
    def _xml_headers(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Accept": ORCID_XML, "Content-Type": ORCID_XML}

    def _request(
        self,
        method: str,
        url: str,
        *,
        secrets: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
        data: bytes | dict[str, str] | None = None,
        retry_unsafe: bool = True,
    ) -> requests.Response:
        """The one way out: rate limit, send, report, retry transient failures, map errors.

        `retry_unsafe=False` retries only what cannot have been processed (connect timeouts, 429, 503).
        """
        secrets = tuple(s for s in (*secrets, self._client_secret) if s)
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            self.limiter.acquire()
            started = time.perf_counter()
            try:
                response = self.session.request(
                    method, url, headers=headers, data=data, timeout=self.timeout, allow_redirects=False
                )
            except requests.RequestException as exc:
                self._report(method, url, None, started)
                retryable = isinstance(exc, requests.ConnectTimeout) or (
                    retry_unsafe and isinstance(exc, requests.Timeout | requests.ConnectionError)
                )
                reason = _scrub(f"{type(exc).__name__}: {exc}", secrets)
                if not retryable:
                    raise OrcidUnavailable(f"ORCID {method} {url} failed: {reason}") from None
                if last:
                    raise OrcidUnavailable(f"ORCID {method} {url} failed {attempt} times: {reason}") from None
                self._pause(self._backoff(attempt), method, url, reason)
                continue

            self._report(method, url, response.status_code, started)
            status = response.status_code
            if 200 <= status < 300:
                return response
            retryable = status in RETRY_STATUSES and (retry_unsafe or status in REJECTED_UNPROCESSED)
            if not retryable:
                raise _error_for(response, secrets)
            retry_after = _retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self.max_retry_after:
                raise OrcidUnavailable(
                    f"ORCID {status}: asked to retry after {retry_after:.0f} s", status=status, retry_after=retry_after
                )
            if last:
                raise OrcidUnavailable(f"ORCID {status} on {method} {url} after {attempt} attempts", status=status)
            self._pause(retry_after if retry_after is not None else self._backoff(attempt), method, url, str(status))
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2 ** (attempt - 1))

    def _pause(self, seconds: float, method: str, url: str, reason: str) -> None:
        log.warning("ORCID %s %s: %s; retrying in %.2f s", method, url, reason, seconds)
        self._sleep(seconds)

    def _report(self, method: str, url: str, status: int | None, started: float) -> None:
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        log.info("ORCID %s %s -> %s (%d ms)", method, url, status, elapsed_ms)
        if self.on_call is not None:
            try:
                self.on_call(method, url, status, elapsed_ms)
            except Exception:  # the audit hook must never break a call
                log.exception("on_call hook failed")


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_details(response: requests.Response) -> tuple[str, int | None, str | None]:
    """(message, ORCID error-code, OAuth error) from an ORCID error body in JSON or XML (or plain text)."""
    text = response.text.strip()
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            message = body.get("developer-message") or body.get("error_description") or body.get("error") or ""
            code = body.get("error-code")
            return str(message), int(code) if str(code).isdigit() else None, body.get("error")
    if text.startswith("<"):
        try:
            root = etree.fromstring(text.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError:
            root = None
        if root is not None:
            message = root.findtext(f"{{{NS_ERROR}}}developer-message") or ""
            code = (root.findtext(f"{{{NS_ERROR}}}error-code") or "").strip()
            return message.strip(), int(code) if code.isdigit() else None, None
    return text[:500], None, None


def _error_for(response: requests.Response, secrets: tuple[str, ...]) -> OrcidError:
    status = response.status_code
    message, error_code, oauth_error = _error_details(response)
    message = _scrub(message, secrets)
    details = {"status": status, "developer_message": message, "error_code": error_code, "oauth_error": oauth_error}
    text = f"ORCID {status}: {message}" if message else f"ORCID {status}"
    if status == 401 and oauth_error != "invalid_client":
        return OrcidTokenInvalid(text, **details)
    if status == 400 and (oauth_error == "invalid_scope" or "invalid scope" in message.lower()):
        return OrcidTokenInvalid(text, **details)
    if status == 400:
        return OrcidBadRequest(text, **details)
    if status == 403:
        return OrcidForbidden(text, **details)
    if status == 404:
        return OrcidNotFound(text, **details)
    if status == 409:
        return OrcidConflict(text, put_code=put_code_from_conflict(message), **details)
    return OrcidError(text, **details)
