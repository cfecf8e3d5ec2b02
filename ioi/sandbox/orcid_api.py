"""Member API v3.0 endpoints of the ORCID simulator: works, employments, educations and their summaries."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from pathlib import Path

from flask import Response, request
from lxml import etree

from ioi.sandbox.orcid_model import READ_SCOPES, Client, Researcher, Token, note_client
from ioi.sandbox.orcid_render import Item, render_activities, render_item, render_summary, to_bytes, to_json
from ioi.sandbox.orcid_rules import (
    BULK_MAX,
    NS,
    SECTIONS,
    WORK_TYPE_ALIASES,
    OrcidApiError,
    bad,
    duplicate_message,
    parse_document,
    put_code_of,
    self_ids,
    validate,
)

XML_TYPES = ("application/vnd.orcid+xml", "application/orcid+xml", "application/xml")
JSON_TYPES = ("application/vnd.orcid+json", "application/orcid+json", "application/json")
SUMMARIES = {"works": "work", "employments": "employment", "educations": "education"}


class MemberApiViews:
    """/v3.0/{orcid}/... Mixed into OrcidSimulator: uses its state below and its items, _find_token and _now."""

    clock: Callable[[], float]
    max_works: int
    schema_dir: Path | None
    _lock: threading.RLock
    _clients: dict[str, Client]
    _researchers: dict[str, Researcher]
    _items: dict[int, Item]
    _put_codes: itertools.count

    def _negotiate(self) -> str:
        """The response media type chosen from Accept (XML when absent); 406 when none fits."""
        accept = request.accept_mimetypes
        if not accept or accept.best == "*/*":
            return XML_TYPES[0]
        best = accept.best_match(XML_TYPES + JSON_TYPES)
        if best is None:
            raise EarlyReply(Response(b"", 406))
        return best

    def _api_error_response(self, error: OrcidApiError) -> Response:
        media = request.environ.get("ioi.media", XML_TYPES[0])
        body = error.to_json() if media in JSON_TYPES else error.to_xml()
        return Response(body, error.status, content_type=f"{media}; charset=UTF-8")

    def _render(self, element: etree._Element, media: str, status: int = 200) -> Response:
        body = json.dumps(to_json(element)).encode() if media in JSON_TYPES else to_bytes(element)
        return Response(body, status, content_type=f"{media}; charset=UTF-8")

    def _guard(self, orcid: str, write: bool) -> Token:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            raise EarlyReply(
                invalid_token_response(401, "unauthorized", "An access token is required to access this resource")
            )
        value = header[7:].strip()
        token = self._find_token(value)
        user_revoked = token is not None and token.revoked_by_user and request.method != "DELETE"
        if token is None or token.revoked or user_revoked or token.expires_at <= self.clock():
            raise EarlyReply(invalid_token_response(401, "invalid_token", f"Invalid access token: {value}"))
        note_client(token.client_id)
        if orcid not in self._researchers:
            raise OrcidApiError(404, 9016, f"404 Not Found: The resource was not found. No ORCID record {orcid}")
        if token.orcid != orcid:
            raise OrcidApiError(
                401,
                9017,
                "401 Unauthorized: The client application is not authorized. Access token is for a different record",
            )
        needed = {"/activities/update"} if write else READ_SCOPES
        if not needed & set(token.scopes):
            raise OrcidApiError(403, 9038, "403 Forbidden: Insufficient or wrong scope " + str(token.scopes))
        return token

    def _incoming(self, section: str) -> etree._Element:
        mimetype = request.mimetype
        if mimetype not in XML_TYPES:
            message = "JSON request bodies are not supported by the simulator" if mimetype in JSON_TYPES else ""
            raise EarlyReply(Response(message or "Unsupported Media Type", 415, mimetype="text/plain"))
        root = parse_document(request.get_data(), section, self.schema_dir)
        return root

    def _api_collection(self, orcid: str, section: str) -> Response:
        media = self._negotiate()
        request.environ["ioi.media"] = media
        if request.method == "POST" and section == "works":
            return self._bulk_create(orcid, self._guard(orcid, write=True), media)
        if request.method == "POST":
            if section not in SECTIONS:
                raise OrcidApiError(404, 9016, f"404 Not Found: The resource was not found: {section}")
            token = self._guard(orcid, write=True)
            return self._create(orcid, section, token)
        if section not in SUMMARIES and section != "activities":
            raise OrcidApiError(404, 9016, f"404 Not Found: The resource was not found: {section}")
        self._guard(orcid, write=False)
        items = sorted(self.items(orcid), key=lambda i: i.put_code)
        if section == "activities":
            return self._render(render_activities(orcid, items), media)
        wanted = SUMMARIES[section]
        return self._render(render_summary(orcid, wanted, [i for i in items if i.section == wanted]), media)

    def _api_item(self, orcid: str, section: str, put_code: str) -> Response:
        media = self._negotiate()
        request.environ["ioi.media"] = media
        if section == "works" and request.method == "GET":
            self._guard(orcid, write=False)
            return self._bulk_read(orcid, put_code, media)
        if section not in SECTIONS:
            raise OrcidApiError(404, 9016, f"404 Not Found: The resource was not found: {section}")
        token = self._guard(orcid, write=request.method != "GET")
        code = int(put_code) if put_code.isdigit() else -1
        if request.method == "PUT":
            return self._update(orcid, section, code, token, media)
        with self._lock:
            item = self._owned_item(orcid, section, code)
            if request.method == "GET":
                return self._render(render_item(item), media)
            self._check_source(item, token)
            del self._items[item.put_code]
        return Response(b"", 204)

    def _owned_item(self, orcid: str, section: str, code: int) -> Item:
        item = self._items.get(code)
        if item is None or item.orcid != orcid or item.section != section:
            raise OrcidApiError(
                404, 9016, f"404 Not Found: The resource was not found. No {section} with put-code {code}"
            )
        return item

    @staticmethod
    def _check_source(item: Item, token: Token) -> None:
        if item.client_id != token.client_id:
            raise OrcidApiError(
                403, 9010, f"403 Forbidden: You are not the source of the {item.section}, so you may not change it."
            )

    def _duplicate_of(self, orcid: str, section: str, client_id: str, keys: set, exclude: int | None) -> Item | None:
        for item in self._items.values():
            if (item.orcid, item.section, item.client_id) == (orcid, section, client_id) and item.put_code != exclude:
                if keys & item.keys:
                    return item
        return None

    def _prepare(self, root: etree._Element, section: str) -> bytes:
        """Apply server rules and return the normalised document to store."""
        validate(root, section)
        work_type = root.find("work:type", NS)
        if work_type is not None and work_type.text in WORK_TYPE_ALIASES:
            work_type.text = WORK_TYPE_ALIASES[work_type.text]
        for name in list(root.attrib):
            if name == "put-code" or name.startswith("{http://www.w3.org/2001/XMLSchema-instance}"):
                del root.attrib[name]
        etree.cleanup_namespaces(root)
        return etree.tostring(root)

    def _conflict(self, item: Item, client: Client | None) -> OrcidApiError:
        name = client.name if client else "the client"
        user = (
            "There was an error when updating the record. Please try again. If the error persists, please contact "
            f"{name} for assistance."
        )
        return OrcidApiError(409, 9021, duplicate_message(item.put_code), user)

    def _create(self, orcid: str, section: str, token: Token) -> Response:
        root = self._incoming(section)
        item = self._add(orcid, section, root, token, request.get_data(as_text=True))
        response = Response(b"", 201)
        response.headers["Location"] = f"{request.url_root.rstrip('/')}/v3.0/{orcid}/{section}/{item.put_code}"
        return response

    def _add(self, orcid: str, section: str, root: etree._Element, token: Token, xml: str) -> Item:
        """Check and store one new item; raises OrcidApiError."""
        if put_code_of(root) is not None:
            raise bad(9024, "Put-code must not be given when adding an item; remove the put-code attribute")
        stored = self._prepare(root, section)
        keys = self_ids(root)
        with self._lock:
            duplicate = self._duplicate_of(orcid, section, token.client_id, keys, None)
            if duplicate:
                raise self._conflict(duplicate, self._clients.get(token.client_id))
            works = sum(1 for i in self._items.values() if i.orcid == orcid and i.section == "work")
            if section == "work" and works >= self.max_works:
                raise OrcidApiError(409, 9048, f"409 Conflict: The record already has the maximum of {works} works")
            now = self._now()
            client = self._clients.get(token.client_id)
            item = Item(
                put_code=next(self._put_codes),
                orcid=orcid,
                section=section,
                client_id=token.client_id,
                client_name=client.name if client else token.client_id,
                xml=xml,
                stored=stored,
                created=now,
                modified=now,
                visibility=self._researchers[orcid].default_visibility,
                keys=keys,
            )
            self._items[item.put_code] = item
            return item

    def _bulk_create(self, orcid: str, token: Token, media: str) -> Response:
        """POST /works: up to 100 works; each answer is the saved work or an error, in order (200)."""
        root = self._incoming("bulk")
        works = list(root)
        if len(works) > BULK_MAX:
            raise bad(9006, f"You may add up to {BULK_MAX} works per request, not {len(works)}")
        answer = etree.Element(f"{{{NS['bulk']}}}bulk", nsmap={"bulk": NS["bulk"]})
        for work in works:
            try:
                item = self._add(orcid, "work", work, token, etree.tostring(work, encoding="unicode"))
                answer.append(render_item(item))
            except OrcidApiError as error:
                answer.append(error.to_element())
        return self._render(answer, media)

    def _bulk_read(self, orcid: str, codes: str, media: str) -> Response:
        """GET /works/{pc1,pc2,...}: the works, or a 404 error in place of a missing one."""
        wanted = [c.strip() for c in codes.split(",") if c.strip()]
        if len(wanted) > BULK_MAX:
            raise bad(9006, f"You may read up to {BULK_MAX} works per request, not {len(wanted)}")
        answer = etree.Element(f"{{{NS['bulk']}}}bulk", nsmap={"bulk": NS["bulk"]})
        with self._lock:
            for code in wanted:
                try:
                    answer.append(render_item(self._owned_item(orcid, "work", int(code) if code.isdigit() else -1)))
                except OrcidApiError as error:
                    answer.append(error.to_element())
        return self._render(answer, media)

    def _update(self, orcid: str, section: str, code: int, token: Token, media: str) -> Response:
        root = self._incoming(section)
        body_code = put_code_of(root)
        if body_code != code:
            raise bad(9019, f"The put-code in the URL was {code} whereas the one in the body was {body_code}")
        with self._lock:
            item = self._owned_item(orcid, section, code)
            self._check_source(item, token)
            visibility = root.get("visibility")
            if visibility and visibility != item.visibility:
                raise OrcidApiError(403, 9035, "403 Forbidden: The visibility of an item cannot be changed by PUT")
            stored = self._prepare(root, section)
            keys = self_ids(root)
            duplicate = self._duplicate_of(orcid, section, token.client_id, keys, code)
            if duplicate:
                raise self._conflict(duplicate, self._clients.get(token.client_id))
            if stored != item.stored:
                item.stored, item.keys, item.modified = stored, keys, self._now()
            item.xml = request.get_data(as_text=True)
            return self._render(render_item(item), media)


class EarlyReply(Exception):
    """Carries a ready response out of nested API helpers."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


def invalid_token_response(status: int, error: str, description: str) -> Response:
    body = json.dumps({"error": error, "error_description": description})
    return Response(body, status, content_type="application/json;charset=UTF-8")
