"""A local DSpace 5/6 simulator: legacy REST (with the Atmire expanded-ORCID patch) and OAI-PMH (XOAI).

    sim = DSpaceSimulator(6, items=generate_repository(50, seed=1), oai_host="repository.example.edu")
    with BackgroundServer(sim) as server:   # REST at {server.url}/rest, OAI at {server.url}/oai/request
        ...

The simulator object is the WSGI app. Its Python API seeds and inspects state (`add_item`, `item`, `items`,
`deleted_items`, `authorities`, `calls`), changes items as an editor would (`set_values`, `replace_metadata`,
`withdraw_item`, `delete_item`, `set_last_modified`) and injects faults (`fail_next`, `timeout_next`,
`truncate_next`, `set_latency`, `invalidate_sessions`). One lock guards all state, so it is thread-safe.
Behaviour follows shared/specs/dspace-api.md §2-§4; where DSpace is odd (500 for an unknown handle,
string booleans, page-index `cursor`), the simulator is odd the same way.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from flask import Flask, Response, g, request

from ioi.sandbox import dspace_oai
from ioi.sandbox.dspace_model import (
    CF_ACCEPTED,
    ORCID_ENABLED_FIELDS,
    ORCID_SHAPE,
    Authority,
    Item,
    MetadataValue,
    field_sort_key,
    java_timestamp,
    person_authority,
    standard_registry,
    to_millis,
    valid_key,
)
from ioi.sandbox.repository_generator import ItemSeed

__all__ = ["Authority", "Call", "DSpaceSimulator", "Item", "MetadataValue", "person_authority"]

EXPANDABLE = ("metadata", "parentCollection", "parentCollectionList", "parentCommunityList", "bitstreams")
HIDDEN_FIELDS = ("dc.description.provenance",)
KEPT_ON_DELETE = ("dc.date.accessioned", "dc.date.available", "dc.identifier.uri", "dc.description.provenance")
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}
REASONS |= {415: "Unsupported Media Type", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
ValueLike = MetadataValue | tuple[str, str] | tuple[str, str, str | None]


@dataclass(frozen=True)
class Call:
    """One request the simulator answered."""

    method: str
    path: str
    query: str
    status: int


@dataclass
class _User:
    email: str
    password: str
    fullname: str
    admin: bool


@dataclass
class _Rule:
    """A fault or latency rule; `remaining=None` means it never runs out."""

    kind: str  # "status" | "timeout" | "truncate" | "latency"
    remaining: int | None
    method: str | None
    pattern: re.Pattern | None
    status: int = 500
    retry_after: int | None = None
    seconds: float = 0.0
    keep: float = 0.5

    def matches(self, method: str, target: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return self.pattern is None or bool(self.pattern.search(target))


class _Abort(Exception):
    """Stops a view with a servlet-container error page."""

    def __init__(self, status: int):
        self.status = status


def error_page(status: int, message: str = "") -> Response:
    """Tomcat's HTML error report (DSpace's 5/6 REST errors are never JSON)."""
    reason = REASONS.get(status, "Error") + (f" - {message}" if message else "")
    html = (
        f'<!doctype html><html lang="en"><head><title>HTTP Status {status} – {reason}</title></head>'
        f'<body><h1>HTTP Status {status} – {reason}</h1><hr class="line" /><p><b>Type</b> Status Report</p>'
        f'<hr class="line" /><h3>Apache Tomcat/8.5.50</h3></body></html>'
    )
    return Response(html, status=status, content_type="text/html;charset=utf-8")


def _json(data: object) -> Response:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status=200, content_type="application/json")


class DSpaceSimulator:
    """A DSpace 5 or 6 server in memory (see the module docstring and the public methods)."""

    def __init__(
        self,
        version: int = 5,
        *,
        users: Mapping[str, str] | None = None,
        oai_host: str = "repository.example.edu",
        oai_page_size: int = 100,
        expanded_orcid: bool = True,
        authority_fields: Sequence[str] = ORCID_ENABLED_FIELDS,
        server_timezone: tzinfo = UTC,
        unknown_handle_status: int = 500,
        secure_cookie: bool = False,
        allow_authority_updates: bool = True,
        oai_live: bool = True,
        clock: Callable[[], datetime] | None = None,
        repository_name: str = "Example Repository",
        admin_email: str = "repository@example.edu",
        items: Iterable[ItemSeed] = (),
    ):
        """`users` maps e-mail → password of administrators (default admin@example.edu / admin).
        `secure_cookie` adds `Secure` to the DSpace 6 JSESSIONID cookie as real (https) servers do; off by
        default because clients do not send Secure cookies over the simulator's plain http.
        `oai_live=False` makes OAI-PMH serve the snapshot of the last `oai_import()` (empty before the first),
        as real DSpace serves its OAI Solr core filled by the nightly `dspace oai import`."""
        if version not in (5, 6):
            raise ValueError(f"DSpace version must be 5 or 6, not {version!r}")
        self.version = version
        self.expanded_orcid = expanded_orcid
        self.authority_fields = tuple(authority_fields)
        self.unknown_handle_status = unknown_handle_status
        self.secure_cookie = secure_cookie
        self.allow_authority_updates = allow_authority_updates
        self.oai_live = oai_live
        self.oai = dspace_oai.OaiSettings(oai_host, oai_page_size, repository_name, admin_email, server_timezone)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._items: dict[str, Item] = {}  # by handle
        self._by_id: dict[str, Item] = {}  # by str(id) and by uuid
        self._expunged: dict[str, Item] = {}
        self._oai_index: list[Item] = []
        self._authorities: dict[str, Authority] = {}
        self._registry = standard_registry()
        self._users: dict[str, _User] = {}
        self._tokens: dict[str, str] = {}  # DSpace 5 token -> e-mail
        self._sessions: dict[str, str] = {}  # DSpace 6 JSESSIONID -> e-mail
        self._rules: list[_Rule] = []
        self._calls: list[Call] = []
        self._next_id = 1
        for email, password in (users or {"admin@example.edu": "admin"}).items():
            self.add_user(email, password)
        self.load(items)
        self.app = self._build_app()

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)

    def reset(self, version: int = 5, **options) -> None:
        """Start over with empty state and these constructor options, keeping the object (and its server).
        Starting a server per test costs half a second on shutdown; a module-wide one plus reset() does not."""
        with self._lock:
            self.__init__(version, **options)

    # ----------------------------------------------------------------- seeding and inspection

    def add_user(self, email: str, password: str, fullname: str = "Repository Admin", admin: bool = True) -> None:
        """An e-person who can log in; only admins may write and rename authorities."""
        with self._lock:
            self._users[email.lower()] = _User(email, password, fullname, admin)

    def add_authority(self, name: str, orcid: str | None = None) -> Authority:
        """Index a person authority (ORCID-linked when `orcid` is given) and return it."""
        return self._index(person_authority(name, orcid))

    def _index(self, authority: Authority) -> Authority:
        with self._lock:
            return self._authorities.setdefault(authority.key, authority)

    def add_item(
        self,
        handle: str,
        metadata: Iterable[ValueLike],
        *,
        authorities: Iterable[Authority] = (),
        last_modified: datetime | None = None,
        withdrawn: bool = False,
        collection: str = "10754/2",
    ) -> Item:
        """Archive an item; values are stored as given (tuples are `(key, value[, language])`). Returns a copy."""
        item = self._add(handle, metadata, authorities, last_modified, withdrawn, collection)
        with self._lock:
            return copy.deepcopy(item)

    def _add(
        self,
        handle: str,
        metadata: Iterable[ValueLike],
        authorities: Iterable[Authority],
        last_modified: datetime | None,
        withdrawn: bool,
        collection: str,
    ) -> Item:
        with self._lock:
            if handle in self._items:
                raise ValueError(f"handle {handle} exists")
            for authority in authorities:
                self._index(authority)
            item_id = self._next_id
            self._next_id += 1
            item = Item(
                id=item_id,
                uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"dspace-item:{handle}")),
                handle=handle,
                metadata=[_to_value(v) for v in metadata],
                last_modified=to_millis(last_modified or self._clock()),
                withdrawn=withdrawn,
                collection=collection,
            )
            self._items[handle] = item
            self._by_id[str(item.id)] = self._by_id[item.uuid] = item
            self._expunged.pop(handle, None)
            return item

    def load(self, seeds: Iterable[ItemSeed]) -> None:
        """Add generated items (see `repository_generator.generate_repository`)."""
        for seed in seeds:
            self._add(seed.handle, seed.metadata, seed.authorities, seed.last_modified, seed.withdrawn, seed.collection)

    def item(self, handle: str) -> Item:
        """A copy of the live item with this handle (KeyError if none)."""
        with self._lock:
            return copy.deepcopy(self._items[handle])

    def item_by_id(self, item_id: int | str) -> Item:
        """A copy of the live item with this numeric id or uuid (KeyError if none)."""
        with self._lock:
            item = self._lookup(str(item_id))
            if item is None:
                raise KeyError(item_id)
            return copy.deepcopy(item)

    def items(self) -> list[Item]:
        """Copies of all live items (withdrawn included), by id."""
        with self._lock:
            return [copy.deepcopy(item) for item in sorted(self._items.values(), key=lambda i: i.id)]

    def deleted_items(self) -> list[Item]:
        """Copies of expunged items (still deleted headers in OAI)."""
        with self._lock:
            return [copy.deepcopy(item) for item in self._expunged.values()]

    def values(self, handle: str, key: str) -> list[str]:
        """The stored texts of one field of an item."""
        return self.item(handle).values(key)

    def authorities(self) -> dict[str, Authority]:
        """The authority index, by key."""
        with self._lock:
            return dict(self._authorities)

    def calls(self) -> list[Call]:
        """Every request answered so far, in order."""
        with self._lock:
            return list(self._calls)

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # ----------------------------------------------------------------- changing items

    def set_values(self, handle: str, key: str, values: Iterable[ValueLike | str]) -> None:
        """Replace one field's values (strings or MetadataValues) and bump lastModified."""
        with self._lock:
            item = self._items[handle]
            new = [_to_value((key, v)) if isinstance(v, str) else _to_value(v) for v in values]
            item.metadata = [v for v in item.metadata if v.key != key] + new
            self._touch(item)

    def replace_metadata(self, handle: str, metadata: Iterable[ValueLike]) -> None:
        """Replace all of an item's values and bump lastModified."""
        with self._lock:
            item = self._items[handle]
            item.metadata = [_to_value(v) for v in metadata]
            self._touch(item)

    def withdraw_item(self, handle: str) -> None:
        """Withdraw: OAI then lists a deleted header; REST hides the item from non-admins."""
        with self._lock:
            item = self._items[handle]
            item.withdrawn = True
            self._touch(item)

    def reinstate_item(self, handle: str) -> None:
        with self._lock:
            item = self._items[handle]
            item.withdrawn = False
            self._touch(item)

    def delete_item(self, handle: str) -> None:
        """Expunge: REST no longer finds it; OAI keeps a deleted header dated now."""
        with self._lock:
            item = self._items.pop(handle)
            del self._by_id[str(item.id)], self._by_id[item.uuid]
            item.deleted = True
            self._touch(item)
            self._expunged[handle] = item

    def oai_import(self) -> None:
        """Snapshot every item for OAI-PMH, like `[dspace]/bin/dspace oai import` (used when oai_live=False)."""
        with self._lock:
            self._oai_index = copy.deepcopy([*self._items.values(), *self._expunged.values()])

    def set_last_modified(self, handle: str, when: datetime) -> None:
        """Set an item's lastModified (naive = UTC)."""
        with self._lock:
            self._items[handle].last_modified = to_millis(when)

    def _touch(self, item: Item) -> None:
        """Bump lastModified: now, but always later than before."""
        item.last_modified = max(to_millis(self._clock()), item.last_modified + timedelta(milliseconds=1))

    # ----------------------------------------------------------------- faults and sessions

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `count` matching requests with `status` (an HTML error page, with a
        `Retry-After` header when given). `path` is a regular expression searched in the path plus `?query`."""
        self._add_rule(_Rule("status", count, method, _compile(path), status=status, retry_after=retry_after))

    def timeout_next(
        self, count: int = 1, seconds: float = 2.0, *, method: str | None = None, path: str | None = None
    ) -> None:
        """Hold the next `count` matching requests `seconds` before answering (a client timeout fires first)."""
        self._add_rule(_Rule("timeout", count, method, _compile(path), seconds=seconds))

    def truncate_next(
        self, count: int = 1, keep: float = 0.5, *, method: str | None = None, path: str | None = None
    ) -> None:
        """Cut the body of the next `count` matching responses to the fraction `keep` (Content-Length fits)."""
        self._add_rule(_Rule("truncate", count, method, _compile(path), keep=keep))

    def set_latency(self, seconds: float, *, method: str | None = None, path: str | None = None) -> None:
        """Delay every matching request by `seconds` until `clear_faults()`."""
        self._add_rule(_Rule("latency", None, method, _compile(path), seconds=seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def invalidate_sessions(self) -> None:
        """Forget every token (5) and session (6), as a restart does: clients must log in again."""
        with self._lock:
            self._tokens.clear()
            self._sessions.clear()

    def _add_rule(self, rule: _Rule) -> None:
        if rule.remaining is not None and rule.remaining < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._rules.append(rule)

    def _take_rules(self, method: str, target: str) -> tuple[float, _Rule | None]:
        """Total latency and the first pending fault matching a request (consuming one use of it)."""
        with self._lock:
            latency = sum(r.seconds for r in self._rules if r.kind == "latency" and r.matches(method, target))
            for rule in self._rules:
                if rule.kind != "latency" and rule.matches(method, target):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return latency, rule
            return latency, None

    # ----------------------------------------------------------------- the web app

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        app.json.sort_keys = False
        app.before_request(self._before)
        app.after_request(self._after)
        app.register_error_handler(_Abort, lambda e: error_page(e.status))
        app.register_error_handler(404, lambda e: error_page(404))
        app.register_error_handler(405, lambda e: error_page(405))
        app.register_error_handler(500, lambda e: error_page(500))
        rule = app.add_url_rule
        rule("/rest/login", view_func=self._login, methods=["POST"])
        rule("/rest/logout", view_func=self._logout, methods=["POST"])
        rule("/rest/status", view_func=self._status)
        rule("/rest/test", view_func=lambda: Response("REST api is running.", content_type="text/plain"))
        rule("/rest/handle/<prefix>/<suffix>", view_func=self._get_handle)
        rule("/rest/items", view_func=self._list_items)
        rule("/rest/items/<item_id>", view_func=self._get_item)
        rule("/rest/items/<item_id>/metadata", view_func=self._get_metadata)
        rule("/rest/items/<item_id>/metadata", "put_metadata", self._write_metadata, methods=["PUT", "POST"])
        rule("/rest/items/<item_id>/metadata", "delete_metadata", self._delete_metadata, methods=["DELETE"])
        rule("/rest/authorities/<key>/value", view_func=self._rename_authority, methods=["PUT"])
        rule("/oai/request", view_func=self._oai, methods=["GET", "POST"])
        return app

    def _before(self) -> Response | None:
        target = request.full_path.rstrip("?")
        latency, fault = self._take_rules(request.method, target)
        g.fault = fault
        if latency:
            time.sleep(latency)
        if fault and fault.kind == "status":
            response = error_page(fault.status)
            if fault.retry_after is not None:
                response.headers["Retry-After"] = str(fault.retry_after)
            return response
        if fault and fault.kind == "timeout":
            time.sleep(fault.seconds)
        return None

    def _after(self, response: Response) -> Response:
        fault = g.get("fault")
        if fault and fault.kind == "truncate":
            body = response.get_data()
            response.set_data(body[: int(len(body) * fault.keep)])
        with self._lock:
            self._calls.append(Call(request.method, request.path, request.query_string.decode(), response.status_code))
        return response

    # -- authentication

    def _current_user(self) -> _User | None:
        """The logged-in e-person, or None (anonymous: unknown tokens and sessions are not errors)."""
        with self._lock:
            if self.version == 5:
                email = self._tokens.get(request.headers.get("rest-dspace-token", ""))
            else:
                email = self._sessions.get(request.cookies.get("JSESSIONID", ""))
            return self._users.get(email) if email else None

    def _check_password(self, email: object, password: object) -> _User | None:
        user = self._users.get(email.lower()) if isinstance(email, str) else None
        return user if user and user.password == password else None

    def _login(self) -> Response:
        if self.version == 5:
            data = _json_body()
            if not isinstance(data, dict):
                raise _Abort(400)
            user = self._check_password(data.get("email"), data.get("password"))
            if user is None:
                return Response(status=403)
            with self._lock:
                token = next((t for t, e in self._tokens.items() if e == user.email.lower()), None)
                if token is None:
                    token = str(uuid.uuid4())
                    self._tokens[token] = user.email.lower()
            return Response(token, content_type="text/plain")
        user = self._check_password(request.values.get("email"), request.values.get("password"))
        session_id = secrets.token_hex(16).upper()
        if user is None:
            response = error_page(401, "Authentication Failed: Login failed")
        else:
            with self._lock:
                self._sessions[session_id] = user.email.lower()
            response = Response(b"", content_type="text/plain; charset=UTF-8")
        response.set_cookie("JSESSIONID", session_id, path="/rest", secure=self.secure_cookie, httponly=True)
        return response

    def _logout(self) -> Response:
        with self._lock:
            if self.version == 5:
                if self._tokens.pop(request.headers.get("rest-dspace-token", ""), None) is None:
                    raise _Abort(400)
            else:
                self._sessions.pop(request.cookies.get("JSESSIONID", ""), None)
        return Response(b"", status=200)

    def _status(self) -> Response:
        user = self._current_user()
        data: dict = {"okay": True, "authenticated": user is not None}
        data["email"] = user.email if user else None
        data["fullname"] = user.fullname if user else None
        if self.version == 5:
            data["token"] = request.headers.get("rest-dspace-token") if user else None
        else:
            data["sourceVersion"] = None if user else "6.3"
            data["apiVersion"] = None if user else "6"
        return _json(data)

    # -- items

    def _lookup(self, item_id: str) -> Item | None:
        """By numeric id (5), or uuid or legacy numeric id (6)."""
        item = self._by_id.get(item_id)
        if item is None or (self.version == 5 and item_id == item.uuid):
            return None
        return item

    def _find(self, item_id: str, user: _User | None, write: bool = False) -> Item:
        """The item, 404 when unknown, 401 without READ (withdrawn, non-admin) or WRITE (non-admin)."""
        if self.version == 5 and not item_id.isdigit():
            raise _Abort(404)
        item = self._lookup(item_id)
        if item is None:
            raise _Abort(404)
        admin = bool(user and user.admin)
        if (write or item.withdrawn) and not admin:
            raise _Abort(401)
        return item

    def _entries(self, item: Item, admin: bool) -> list[dict]:
        """The metadata array as REST shows it: sorted by field then place, Atmire-formatted values."""
        ordered = sorted(
            (v for v in item.metadata if admin or v.key not in HIDDEN_FIELDS),
            key=lambda v: field_sort_key(v.key, self._registry),
        )
        entries = []
        for value in ordered:
            entry = {"key": value.key, "value": self._shown(value), "language": value.language}
            if self.version == 6:
                schema, element, *rest = value.key.split(".")
                entry |= {"schema": schema, "element": element, "qualifier": rest[0] if rest else None}
            entries.append(entry)
        return entries

    def _shown(self, value: MetadataValue) -> str:
        """`Name::key[::orcid]` for authority-linked values under the Atmire patch (missing key → 500)."""
        if not (self.expanded_orcid and value.authority):
            return value.value
        authority = self._authorities.get(value.authority)
        if authority is None:
            raise _Abort(500)
        text = f"{value.value}::{authority.key}"
        return f"{text}::{authority.orcid}" if authority.orcid else text

    def _item_json(self, item: Item, expand: set[str], admin: bool) -> dict:
        expanded = {part for part in EXPANDABLE if "all" in expand or part in expand}
        ident = item.id if self.version == 5 else item.uuid
        collection = self._collection_json(item.collection, item.name)
        data: dict = {"id": item.id} if self.version == 5 else {"uuid": item.uuid}
        data |= {
            "name": item.name,
            "handle": item.handle,
            "type": "item",
            "link": f"/rest/items/{ident}",
            "expand": [p for p in EXPANDABLE if p not in expanded] + ([] if "all" in expand else ["all"]),
            "lastModified": java_timestamp(item.last_modified, self.oai.zone),
            "parentCollection": collection if "parentCollection" in expanded else None,
            "parentCollectionList": [collection] if "parentCollectionList" in expanded else None,
            "parentCommunityList": [self._community_json(item.community)]
            if "parentCommunityList" in expanded
            else None,
            "metadata": self._entries(item, admin) if "metadata" in expanded else None,
            "bitstreams": [] if "bitstreams" in expanded else None,
            "archived": "false" if item.withdrawn else "true",
            "withdrawn": "true" if item.withdrawn else "false",
        }
        return data

    def _collection_json(self, handle: str, _name: str | None) -> dict:
        number = int(handle.rsplit("/", 1)[-1])
        ident: dict = {"id": number} if self.version == 5 else {"uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, handle))}
        return ident | {"name": f"Collection {handle}", "handle": handle, "type": "collection"}

    def _community_json(self, handle: str) -> dict:
        return self._collection_json(handle, None) | {"name": f"Community {handle}", "type": "community"}

    def _expand(self) -> set[str]:
        return {part.strip() for part in request.args.get("expand", "").split(",") if part.strip()}

    def _get_handle(self, prefix: str, suffix: str) -> Response:
        user = self._current_user()
        with self._lock:
            item = self._items.get(f"{prefix}/{suffix}")
            admin = bool(user and user.admin)
            if item is None or (item.withdrawn and not admin):
                raise _Abort(self.unknown_handle_status)  # DSpace 5/6 answer 500, not 404
            return _json(self._item_json(item, self._expand(), admin))

    def _get_item(self, item_id: str) -> Response:
        user = self._current_user()
        with self._lock:
            item = self._find(item_id, user)
            return _json(self._item_json(item, self._expand(), bool(user and user.admin)))

    def _list_items(self) -> Response:
        user = self._current_user()
        limit = request.args.get("limit", "100")
        offset = request.args.get("offset", "0")
        if not (limit.isdigit() and offset.isdigit()):
            raise _Abort(400)
        admin = bool(user and user.admin)
        with self._lock:
            visible = [i for i in sorted(self._items.values(), key=lambda i: i.id) if admin or not i.withdrawn]
            page = visible[int(offset) : int(offset) + int(limit)]
            return _json([self._item_json(item, self._expand(), admin) for item in page])

    def _get_metadata(self, item_id: str) -> Response:
        user = self._current_user()
        with self._lock:
            item = self._find(item_id, user)
            return _json(self._entries(item, bool(user and user.admin)))

    def _write_metadata(self, item_id: str) -> Response:
        """PUT: clear every key sent, then append in body order; POST: append only."""
        body = _json_body()
        if not isinstance(body, list) or not all(isinstance(e, dict) for e in body):
            raise _Abort(400)
        entries = [e for e in body if valid_key(e.get("key"))]
        user = self._current_user()
        with self._lock:
            item = self._find(item_id, user, write=True)
            if request.method == "PUT":
                keys = {e["key"] for e in entries}
                item.metadata = [v for v in item.metadata if v.key not in keys]
            for entry in entries:
                item.metadata.append(self._incoming(entry["key"], entry.get("value"), entry.get("language")))
            self._touch(item)
        return Response(b"", status=200)

    def _incoming(self, key: str, text: object, language: object) -> MetadataValue:
        """A value as written through REST, applying the Atmire patch's rules on authority fields."""
        text = "" if text is None else str(text)
        language = language if isinstance(language, str) else None
        if not (self.expanded_orcid and key in self.authority_fields):
            return MetadataValue(key, text, language)
        name, *rest = text.split("::")
        link = rest[0] if rest else ""
        if ORCID_SHAPE.match(link):
            found = next((a for a in self._authorities.values() if a.orcid == link), None)
            authority = found or self._index(person_authority(name, link))
            return MetadataValue(key, name, language, authority.key, CF_ACCEPTED)
        if link:
            authority = self._authorities.get(link)
            if authority is None:
                return MetadataValue(key, name, language)
            return MetadataValue(key, authority.name, language, authority.key, CF_ACCEPTED)
        found = next((a for a in self._authorities.values() if a.name == name and not a.orcid), None)
        authority = found or self._index(person_authority(name))
        return MetadataValue(key, name, language, authority.key, CF_ACCEPTED)

    def _delete_metadata(self, item_id: str) -> Response:
        user = self._current_user()
        with self._lock:
            item = self._find(item_id, user, write=True)
            kept = []
            for key in KEPT_ON_DELETE:
                first = next((v for v in item.metadata if v.key == key), None)
                if first:
                    kept.append(first)
            item.metadata = kept
            self._touch(item)
        return Response(b"", status=200)

    def _rename_authority(self, key: str) -> Response:
        """Rename a person authority: new computed key, old key gone, every value re-pointed."""
        if not self.allow_authority_updates:
            raise _Abort(400)
        user = self._current_user()
        if not (user and user.admin):
            raise _Abort(401)
        if request.mimetype != "text/plain":
            raise _Abort(415)
        new_name = request.get_data(as_text=True).strip()
        with self._lock:
            old = self._authorities.get(key)
            if old is None or not new_name:
                raise _Abort(500)
            new = person_authority(new_name, old.orcid)
            del self._authorities[key]
            self._authorities[new.key] = new
            for item in self._items.values():
                changed = False
                for value in item.metadata:
                    if value.authority == key:
                        value.value, value.authority, changed = new_name, new.key, True
                if changed:
                    self._touch(item)
        return Response(b"", status=200)

    # -- OAI-PMH

    def _oai(self) -> Response:
        args = {name: request.values.get(name, "") for name in request.values}
        with self._lock:
            items = [*self._items.values(), *self._expunged.values()] if self.oai_live else self._oai_index
            xml = dspace_oai.respond(args, items, self.oai, request.base_url, self._clock())
        return Response(xml, content_type="text/xml;charset=UTF-8")


def _compile(pattern: str | None) -> re.Pattern | None:
    return re.compile(pattern) if pattern else None


def _to_value(value: ValueLike) -> MetadataValue:
    if isinstance(value, MetadataValue):
        return MetadataValue(value.key, value.value, value.language, value.authority, value.confidence)
    key, text, *rest = value
    return MetadataValue(key, text, rest[0] if rest else None)


def _json_body() -> object:
    """The JSON request body; 415 for another media type, 400 when it does not parse."""
    if request.mimetype != "application/json":
        raise _Abort(415)
    try:
        return json.loads(request.get_data(as_text=True))
    except ValueError as error:
        raise _Abort(400) from error
