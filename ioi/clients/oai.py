"""Client of an OAI-PMH 2.0 data provider (DSpace's XOAI at `/oai/request`): ListIdentifiers and GetRecord.

One `requests.Session`, a default timeout, retries with backoff on 5xx, timeouts and cut (unparseable)
answers, and typed errors: each OAI error code has its class, except `noRecordsMatch`, which is an
empty list. DSpace's resumption tokens are `{prefix}/{from}/{until}/{set}/{offset}` and its `cursor`
is a page index, not the record offset of the OAI spec; both are kept as the server sends them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from lxml import etree

from ioi.clients.dspace import use_environment

log = logging.getLogger(__name__)

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
NS = {"oai": OAI_NS}
RETRY_STATUSES = frozenset({500, 502, 503, 504})
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class OaiError(Exception):
    """An OAI-PMH call failed; `code` is the OAI error code when the provider sent one."""

    code: str | None = None

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class OaiBadArgument(OaiError):
    code = "badArgument"


class OaiBadResumptionToken(OaiError):
    code = "badResumptionToken"


class OaiBadVerb(OaiError):
    code = "badVerb"


class OaiCannotDisseminateFormat(OaiError):
    code = "cannotDisseminateFormat"


class OaiIdDoesNotExist(OaiError):
    code = "idDoesNotExist"


class OaiUnavailable(OaiError):
    """The provider kept failing (HTTP errors, timeouts) until the retries ran out."""


class OaiBadResponse(OaiError):
    """The answer is not OAI-PMH XML: malformed, cut short, or without the expected element."""


ERRORS: dict[str, type[OaiError]] = {
    cls.code: cls  # type: ignore[misc]
    for cls in (OaiBadArgument, OaiBadResumptionToken, OaiBadVerb, OaiCannotDisseminateFormat, OaiIdDoesNotExist)
}


@dataclass(frozen=True)
class Header:
    """One record header: `handle` is the identifier after the `oai:{host}:` prefix."""

    identifier: str
    datestamp: str
    deleted: bool

    @property
    def handle(self) -> str:
        return self.identifier.split(":", 2)[-1]


@dataclass(frozen=True)
class Page:
    """One ListIdentifiers answer: its headers and where the list goes on."""

    headers: list[Header]
    response_date: str | None
    token: str | None = None
    complete_list_size: int | None = None
    cursor: int | None = None  # DSpace: the page index


class OaiClient:
    """ListIdentifiers (following resumption tokens) and GetRecord against one OAI-PMH base URL."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: tuple[float, float] = (5.0, 60.0),
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = "IOI (Institutional ORCID Integration)",
    ):
        self.base_url = base_url.rstrip("?")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self.session = session or requests.Session()
        self.session.headers.update({"User-Agent": user_agent, "Accept": "text/xml"})
        use_environment(self.session, self.base_url)

    def close(self) -> None:
        self.session.close()

    def list_identifiers_page(
        self, metadata_prefix: str = "xoai", from_date: str | None = None, token: str | None = None
    ) -> Page:
        """One page of ListIdentifiers: the first (by prefix and `from`) or the one a token names.

        `noRecordsMatch` gives an empty page.
        """
        if token is not None:
            params = {"verb": "ListIdentifiers", "resumptionToken": token}
        else:
            params = {"verb": "ListIdentifiers", "metadataPrefix": metadata_prefix}
            if from_date:
                params["from"] = from_date
        root = self._call(params)
        response_date = root.findtext("oai:responseDate", namespaces=NS)
        if self._error(root, allow_empty=True):
            return Page([], response_date)
        listing = root.find("oai:ListIdentifiers", NS)
        if listing is None:
            raise OaiBadResponse("ListIdentifiers answer without a ListIdentifiers element")
        headers = [_header(element) for element in listing.iterfind("oai:header", NS)]
        token_element = listing.find("oai:resumptionToken", NS)
        if token_element is None:
            return Page(headers, response_date)
        return Page(
            headers,
            response_date,
            token=(token_element.text or "").strip() or None,
            complete_list_size=_int(token_element.get("completeListSize")),
            cursor=_int(token_element.get("cursor")),
        )

    def list_identifiers(
        self, metadata_prefix: str = "xoai", from_date: str | None = None, token: str | None = None
    ) -> Iterator[Page]:
        """Every page, following resumption tokens until an empty or absent one ends the list."""
        page = self.list_identifiers_page(metadata_prefix, from_date, token)
        yield page
        while page.token:
            page = self.list_identifiers_page(token=page.token)
            yield page

    def get_record_header(self, identifier: str, metadata_prefix: str = "xoai") -> Header:
        """GetRecord: the record's header (status and datestamp); OaiIdDoesNotExist when unknown."""
        root = self._call({"verb": "GetRecord", "metadataPrefix": metadata_prefix, "identifier": identifier})
        self._error(root, allow_empty=False)
        element = root.find("oai:GetRecord/oai:record/oai:header", NS)
        if element is None:
            raise OaiBadResponse("GetRecord answer without a record header")
        return _header(element)

    # ----------------------------------------------------------------------------- internals

    def _error(self, root: etree._Element, allow_empty: bool) -> bool:
        """Raise the typed error of an OAI <error>; True for noRecordsMatch when an empty list is fine."""
        errors = root.findall("oai:error", NS)
        if not errors:
            return False
        codes = [e.get("code", "") for e in errors]
        if allow_empty and codes == ["noRecordsMatch"]:
            return True
        code = codes[0]
        message = "; ".join(f"{e.get('code')}: {(e.text or '').strip()}" for e in errors)
        raise ERRORS.get(code, OaiError)(f"OAI-PMH error {message}", code=code)

    def _call(self, params: dict[str, str]) -> etree._Element:
        """GET with retries; a cut or malformed answer is retried, then raised as OaiBadResponse."""
        verb = params["verb"]
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            started = time.perf_counter()
            try:
                response = self.session.get(self.base_url, params=params, timeout=self.timeout)
            except requests.RequestException as exc:
                self._log(verb, None, started)
                reason = f"{type(exc).__name__}: {exc}"
                if last:
                    raise OaiUnavailable(f"OAI-PMH {verb} failed ({attempt} attempts): {reason}") from None
                self._pause(attempt, verb, reason)
                continue
            self._log(verb, response.status_code, started)
            if response.status_code != 200:
                reason = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES or last:
                    raise OaiUnavailable(f"OAI-PMH {verb} answered {reason} ({attempt} attempts)")
                self._pause(attempt, verb, reason)
                continue
            try:
                root = etree.fromstring(response.content, PARSER)
            except etree.XMLSyntaxError as exc:
                reason = f"malformed or cut XML ({len(response.content)} bytes): {exc}"
                if last:
                    raise OaiBadResponse(f"OAI-PMH {verb}: {reason}") from None
                self._pause(attempt, verb, reason)
                continue
            if root.tag != f"{{{OAI_NS}}}OAI-PMH":
                raise OaiBadResponse(f"OAI-PMH {verb}: the answer is not OAI-PMH (root {root.tag})")
            return root
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, attempt: int, verb: str, reason: str) -> None:
        seconds = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        log.warning("OAI-PMH %s: %s; retrying in %.2f s", verb, reason, seconds)
        if seconds > 0:
            self._sleep(seconds)

    def _log(self, verb: str, status: int | None, started: float) -> None:
        log.info("OAI-PMH GET %s %s -> %s (%d ms)", self.base_url, verb, status, (time.perf_counter() - started) * 1000)


def _header(element: etree._Element) -> Header:
    identifier = (element.findtext("oai:identifier", namespaces=NS) or "").strip()
    if not identifier:
        raise OaiBadResponse("a header without an identifier")
    datestamp = (element.findtext("oai:datestamp", namespaces=NS) or "").strip()
    return Header(identifier, datestamp, element.get("status") == "deleted")


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def oai_datetime(when: datetime) -> str:
    """A datetime as an OAI-PMH UTC datetime at second granularity (naive = UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_oai_datetime(text: str) -> datetime:
    """`YYYY-MM-DDThh:mm:ssZ` or `YYYY-MM-DD` as an aware UTC datetime (ValueError otherwise)."""
    text = text.strip()
    form = "%Y-%m-%dT%H:%M:%SZ" if "T" in text else "%Y-%m-%d"
    return datetime.strptime(text, form).replace(tzinfo=UTC)
