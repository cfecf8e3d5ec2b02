"""A local ORCID simulator (OAuth + Member API v3.0 for works, employments, educations) for tests and the demo.

sim = OrcidSimulator()
client = sim.register_client(redirect_uris=["http://127.0.0.1:5000/orcid/callback"])
with sim.serve() as server:
    ...  # server.url is the base for /oauth/... and /v3.0/...
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import secrets
import socket
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Flask, Response, request
from lxml import etree
from markupsafe import escape
from werkzeug.http import HTTP_STATUS_CODES

from ioi.orcid_ids import make_orcid
from ioi.sandbox.orcid_faults import Fault, FaultPlan, TokenBucket
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
    schema_dir,
    self_ids,
    validate,
)
from ioi.sandbox.server import BackgroundServer

EXPIRES_IN = 631138518
CODE_LIFETIME = 1440 * 60
SCOPES = frozenset({"/authenticate", "openid", "/read-public", "/read-limited", "/activities/update", "/person/update"})
MEMBER_SCOPES = frozenset({"/read-limited", "/activities/update", "/person/update"})
READ_SCOPES = SCOPES - {"/person/update"}
XML_TYPES = ("application/vnd.orcid+xml", "application/orcid+xml", "application/xml")
JSON_TYPES = ("application/vnd.orcid+json", "application/orcid+json", "application/json")
SUMMARIES = {"works": "work", "employments": "employment", "educations": "education"}


@dataclass
class Client:
    """A registered API client."""

    client_id: str
    client_secret: str
    redirect_uris: list[str]
    name: str = "IOI test client"
    member: bool = True


@dataclass
class Researcher:
    """A sandbox ORCID record holder."""

    orcid: str
    given_names: str
    family_names: str
    email: str | None = None
    default_visibility: str = "public"

    @property
    def name(self) -> str:
        return f"{self.given_names} {self.family_names}".strip()


@dataclass
class Token:
    """An access/refresh token pair issued to a client for one record."""

    access_token: str
    refresh_token: str
    client_id: str
    orcid: str | None
    scopes: list[str]
    expires_at: float
    revoked: bool = False
    revoked_by_user: bool = False  # ORCID quirk: still accepted for DELETE
    code: str | None = None

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


@dataclass
class Grant:
    """An authorization code waiting to be exchanged."""

    code: str
    client_id: str
    orcid: str
    scopes: list[str]
    redirect_uri: str
    created: float
    used: bool = False


@dataclass
class Call:
    """One request the simulator received (admin calls are not logged)."""

    method: str
    path: str
    status: int | None
    client_id: str | None
    at: float


class OAuthError(Exception):
    """An OAuth failure, answered as {"error", "error_description"} JSON."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class OrcidSimulator:
    """In-memory ORCID: OAuth pages and tokens, Member API v3.0 works/employments/educations, fault injection.

    `rate`/`burst` configure the per-client token bucket (None disables it); `schemas` is the ORCID XSD directory
    (default: IOI_ORCID_SCHEMA_DIR or the shared copy; False skips XSD validation); `clock` returns epoch seconds.
    """

    def __init__(
        self,
        *,
        rate: float | None = 24.0,
        burst: int = 40,
        schemas: Path | str | bool | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.clock = clock
        self._schemas = schemas
        self._rate = (rate, burst)
        self._lock = threading.RLock()
        self.faults = FaultPlan()
        self._orcid_numbers = itertools.count(900_000_000_001)
        self._put_codes = itertools.count(100_001)
        self.reset()
        self.app = self._build_app()

    def reset(self) -> None:
        """Forget all clients, researchers, tokens, items, calls and faults; restore the configured limits."""
        schemas = self._schemas
        with self._lock:
            self.schema_dir: Path | None = None if schemas is False else Path(schemas) if schemas else schema_dir()
            self.set_rate_limit(*self._rate)
            self.max_works = 10_000  # per record; beyond it POST work is 409/9048
            self.faults.clear()
            self._clients: dict[str, Client] = {}
            self._researchers: dict[str, Researcher] = {}
            self._tokens: list[Token] = []
            self._grants: dict[str, Grant] = {}
            self._items: dict[int, Item] = {}
            self._calls: list[Call] = []

    def set_rate_limit(self, rate: float | None, burst: int = 40) -> None:
        """Per-client token bucket: `rate` requests/second, `burst` at once; None turns limiting off."""
        self.limiter = TokenBucket(rate, burst) if rate else None

    # ---- serving -------------------------------------------------------------------------------------------------

    def serve(self, port: int = 0) -> BackgroundServer:
        """A BackgroundServer for this simulator on loopback (use it as a context manager)."""
        return BackgroundServer(self, port=port)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        client_id = self._client_of_environ(environ)
        meta: dict[str, str | None] = {}
        environ["ioi.meta"] = meta  # the Flask views note the client here (from_app copies the environ shallowly)
        if self.faults.latency:
            time.sleep(self.faults.latency)
        fault = self.faults.take(method, path)
        if fault and fault.kind in ("timeout", "delay"):
            time.sleep(fault.seconds)
            if fault.kind == "timeout":
                self._log(method, path, None, client_id)
                return self._drop(environ, start_response)
        if fault and fault.kind == "status":
            response = self._fault_response(fault, environ)
        elif path.startswith("/v3.0/") and self.limiter and not self.limiter.allow(client_id or "anonymous"):
            response = Response("Rate limit exceeded: try again later\n", 503, mimetype="text/plain")
        else:
            response = Response.from_app(self.app, environ, buffered=True)
        if fault and fault.kind == "truncate":
            response.set_data(response.get_data()[: fault.keep])
        self._log(method, path, response.status_code, meta.get("client_id", client_id))
        return response(environ, start_response)

    @staticmethod
    def _drop(environ: dict, start_response: Callable) -> list[bytes]:
        """Close the client's connection without an answer (the server's write then fails quietly)."""
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return []

    def _fault_response(self, fault: Fault, environ: dict) -> Response:
        status = fault.status
        if status == 401:
            token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")[2].strip()
            return _invalid_token(401, "invalid_token", f"Invalid access token: {token}")
        if status == 503:
            return Response("Service Unavailable\n", 503, mimetype="text/plain")
        if status == 404:
            error = OrcidApiError(404, 9016, "404 Not Found: The resource was not found. (injected fault)")
        elif status == 409:
            error = OrcidApiError(409, 9021, duplicate_message(fault.put_code or 0))
        else:
            error = OrcidApiError(status, 9008, f"{status} {HTTP_STATUS_CODES.get(status, 'Error')} (injected fault)")
        if "json" in environ.get("HTTP_ACCEPT", ""):
            return Response(error.to_json(), status, content_type="application/vnd.orcid+json; charset=UTF-8")
        return Response(error.to_xml(), status, content_type="application/vnd.orcid+xml; charset=UTF-8")

    def _client_of_environ(self, environ: dict) -> str | None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if header.lower().startswith("bearer "):
            token = self._find_token(header[7:].strip())
            return token.client_id if token else None
        return None

    # ---- helpers for tests and the demo --------------------------------------------------------------------------

    def register_client(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        redirect_uris: Iterable[str] = ("http://127.0.0.1/",),
        name: str = "IOI test client",
        member: bool = True,
    ) -> Client:
        """Register an API client; ids default to the APP-XXXXXXXXXXXXXXXX shape."""
        alphabet = string.ascii_uppercase + string.digits
        client = Client(
            client_id=client_id or "APP-" + "".join(secrets.choice(alphabet) for _ in range(16)),
            client_secret=client_secret or str(uuid.uuid4()),
            redirect_uris=list(redirect_uris),
            name=name,
            member=member,
        )
        with self._lock:
            self._clients[client.client_id] = client
        return client

    def create_researcher(
        self,
        given_names: str = "Sofia",
        family_names: str = "Garcia",
        email: str | None = None,
        orcid: str | None = None,
    ) -> Researcher:
        """Create a record with a fresh, check-summed iD (or the given one)."""
        with self._lock:
            number = next(self._orcid_numbers)
            email = email.strip().lower() if email else None
            researcher = Researcher(orcid or make_orcid(number), given_names, family_names, email)
            self._researchers[researcher.orcid] = researcher
            return researcher

    def issue_token(
        self, client_id: str, orcid: str, scope: str | Iterable[str] = "/read-limited /activities/update"
    ) -> Token:
        """Issue a token directly, as if the researcher had authorised the client."""
        scopes = scope.split() if isinstance(scope, str) else list(scope)
        with self._lock:
            return self._new_token(client_id, orcid, scopes)

    def expire_token(self, access_token: str) -> None:
        """Make a token expired (as if its lifetime had run out)."""
        with self._lock:
            token = self._find_token(access_token)
            if token:
                token.expires_at = self.clock() - 1

    def revoke_token(self, token_value: str, by_user: bool = True) -> None:
        """Revoke a token pair (by access or refresh token). A researcher's revocation (by_user) still lets
        DELETE calls through, as on ORCID; by_user=False revokes it like the client's /oauth/revoke."""
        with self._lock:
            token = self._find_token(token_value, refresh=True)
            if token and by_user:
                token.revoked_by_user = True
            elif token:
                token.revoked = True

    # ---- fault injection -----------------------------------------------------------------------------------------

    def fail_next(
        self, n: int = 1, status: int = 500, *, method: str | None = None, path: str | None = None, put_code: int = 0
    ) -> None:
        """Answer the next `n` calls (matching method and path regex) with `status` (500, 503, 401, 404, 409, ...)."""
        self.faults.add(Fault("status", n, status=status, method=method, path=_pattern(path), put_code=put_code))

    def timeout_next(
        self, n: int = 1, seconds: float = 1.0, *, drop: bool = True, method: str | None = None, path: str | None = None
    ) -> None:
        """Sleep `seconds` on the next `n` matching calls, then drop the connection (or, drop=False, answer)."""
        kind = "timeout" if drop else "delay"
        self.faults.add(Fault(kind, n, seconds=seconds, method=method, path=_pattern(path)))

    def truncate_next(self, n: int = 1, keep: int = 10, *, method: str | None = None, path: str | None = None) -> None:
        """Cut the body of the next `n` matching responses to `keep` bytes."""
        self.faults.add(Fault("truncate", n, keep=keep, method=method, path=_pattern(path)))

    def fail_randomly(
        self,
        fraction: float,
        *,
        seed: int = 0,
        statuses: Iterable[int] = (500, 503),
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Fail about `fraction` of matching calls with one of `statuses`, from a seeded RNG (0 turns it off)."""
        self.faults.set_random(fraction, seed, tuple(statuses), method, path)

    def add_latency(self, seconds: float) -> None:
        """Delay every call by `seconds` (0 turns it off)."""
        self.faults.latency = seconds

    def clear_faults(self) -> None:
        """Forget all pending faults, random failures and latency."""
        self.faults.clear()

    # ---- inspectable state ---------------------------------------------------------------------------------------

    @property
    def researchers(self) -> list[Researcher]:
        with self._lock:
            return [replace(r) for r in self._researchers.values()]

    @property
    def clients(self) -> list[Client]:
        with self._lock:
            return [replace(c) for c in self._clients.values()]

    @property
    def tokens(self) -> list[Token]:
        with self._lock:
            return [replace(t) for t in self._tokens]

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def items(self, orcid: str | None = None, section: str | None = None) -> list[Item]:
        """Stored items (copies), optionally for one iD and one section ('work', 'employment', 'education')."""
        with self._lock:
            return [
                replace(i, keys=set(i.keys))
                for i in self._items.values()
                if (orcid is None or i.orcid == orcid) and (section is None or i.section == section)
            ]

    def researcher(self, orcid: str) -> Researcher | None:
        with self._lock:
            found = self._researchers.get(orcid)
            return replace(found) if found else None

    # ---- internals -----------------------------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def _log(self, method: str, path: str, status: int | None, client_id: str | None) -> None:
        with self._lock:
            self._calls.append(Call(method, path, status, client_id, self.clock()))

    def _find_token(self, value: str, refresh: bool = False) -> Token | None:
        with self._lock:
            for token in self._tokens:
                if token.access_token == value or (refresh and token.refresh_token == value):
                    return token
        return None

    def _new_token(self, client_id: str, orcid: str | None, scopes: list[str], code: str | None = None) -> Token:
        token = Token(
            str(uuid.uuid4()), str(uuid.uuid4()), client_id, orcid, scopes, self.clock() + EXPIRES_IN, code=code
        )
        self._tokens.append(token)
        return token

    def _token_body(self, token: Token) -> dict:
        researcher = self._researchers.get(token.orcid or "")
        body = {
            "access_token": token.access_token,
            "token_type": "bearer",
            "refresh_token": token.refresh_token,
            "expires_in": max(0, round(token.expires_at - self.clock())),
            "scope": token.scope,
            "name": researcher.name if researcher else None,
            "orcid": token.orcid,
        }
        if token.orcid is None:
            del body["name"]
        return body

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        app.add_url_rule("/oauth/authorize", view_func=self._authorize_page, methods=["GET"])
        app.add_url_rule("/oauth/authorize", view_func=self._authorize_decision, methods=["POST"])
        app.add_url_rule("/oauth/token", view_func=self._token, methods=["POST"])
        app.add_url_rule("/oauth/revoke", view_func=self._revoke, methods=["POST"])
        app.add_url_rule("/v3.0/<orcid>/<section>", view_func=self._api_collection, methods=["GET", "POST"])
        app.add_url_rule(
            "/v3.0/<orcid>/<section>/<put_code>", view_func=self._api_item, methods=["GET", "PUT", "DELETE"]
        )
        app.add_url_rule("/_sandbox/calls", view_func=self._admin_calls, methods=["GET"])
        app.add_url_rule("/_sandbox/faults", view_func=self._admin_faults, methods=["POST", "DELETE"])
        app.register_error_handler(OAuthError, _oauth_error_response)
        app.register_error_handler(OrcidApiError, self._api_error_response)
        app.register_error_handler(_Reply, lambda reply: reply.response)
        return app

    # ---- OAuth ---------------------------------------------------------------------------------------------------

    def _checked_client(self, args) -> tuple[Client | None, str | None]:
        """The client and redirect URI of an authorize request, or (None, error message) for an error page."""
        client = self._clients.get(args.get("client_id", ""))
        _note_client(client.client_id if client else None)
        if client is None:
            return None, f"Unknown client_id {args.get('client_id', '')!r}."
        redirect_uri = args.get("redirect_uri", "")
        if not _redirect_allowed(redirect_uri, client.redirect_uris):
            return None, f"The redirect_uri {redirect_uri!r} is not registered for this client."
        return client, None

    def _authorize_page(self) -> Response:
        client, problem = self._checked_client(request.args)
        if client is None:
            return _error_page(problem or "")
        early = self._authorize_request_error(client, request.args)
        if early:
            return early
        return self._consent_page(client, request.args)

    def _authorize_request_error(self, client: Client, args) -> Response | None:
        redirect_uri, state = args["redirect_uri"], args.get("state")
        if args.get("response_type") != "code":
            return _redirect(
                redirect_uri, state, error="unsupported_response_type", error_description="Use response_type=code"
            )
        scopes = args.get("scope", "").split()
        unknown = [s for s in scopes if s not in SCOPES or (s in MEMBER_SCOPES and not client.member)]
        if not scopes or unknown:
            return _redirect(redirect_uri, state, error="invalid_scope", error_description=f"Invalid scope: {unknown}")
        return None

    def _consent_page(self, client: Client, args, message: str = "", status: int = 200) -> Response:
        hidden = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(args.get(k, ""))}">'
            for k in ("client_id", "response_type", "scope", "redirect_uri", "state")
        )
        with self._lock:
            people = list(self._researchers.values())
        chosen = args.get("orcid") or ""
        email = (args.get("email") or "").lower()
        options = []
        for person in people:
            selected = " selected" if person.orcid == chosen or (email and person.email == email) else ""
            label = f"{person.name} ({person.orcid})" + (f", {person.email}" if person.email else "")
            options.append(f'<option value="{escape(person.orcid)}"{selected}>{escape(label)}</option>')
        scopes = "".join(f"<li>{escape(s)}</li>" for s in args.get("scope", "").split())
        register_first = args.get("show_login") == "false" or not people
        body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>ORCID sandbox: authorize {escape(client.name)}</title></head>
<body><h1>ORCID sandbox</h1>
<p><strong>{escape(client.name)}</strong> asks for access to your ORCID record:</p><ul>{scopes}</ul>
<p class="error">{escape(message)}</p>
<form method="post" action="/oauth/authorize">{hidden}
<fieldset><legend>Sign in</legend>
<label><input type="radio" name="mode" value="signin"{"" if register_first else " checked"}> Existing researcher</label>
<select name="researcher"><option value="">(choose)</option>{"".join(options)}</select>
<label>or email <input type="email" name="signin_email" value="{escape(args.get("email", ""))}"></label>
</fieldset>
<fieldset><legend>Register</legend>
<label><input type="radio" name="mode" value="register"{" checked" if register_first else ""}> New researcher</label>
<label>Given names <input name="given_names" value="{escape(args.get("given_names", ""))}"></label>
<label>Family names <input name="family_names" value="{escape(args.get("family_names", ""))}"></label>
<label>Email <input type="email" name="register_email" value="{escape(args.get("email", ""))}"></label>
</fieldset>
<button type="submit" name="action" value="authorize">Authorize</button>
<button type="submit" name="action" value="deny">Deny</button>
</form></body></html>"""
        return Response(body, status, mimetype="text/html")

    def _authorize_decision(self) -> Response:
        form = request.form
        client, problem = self._checked_client(form)
        if client is None:
            return _error_page(problem or "")
        early = self._authorize_request_error(client, form)
        if early:
            return early
        redirect_uri, state = form["redirect_uri"], form.get("state")
        if form.get("action") == "deny":
            return _redirect(
                redirect_uri, state, error="access_denied", error_description="User denied access to the client"
            )
        with self._lock:
            researcher, message = self._signed_in(form)
            if researcher is None:
                return self._consent_page(client, form, message, status=400)
            code = self._new_code()
            self._grants[code] = Grant(
                code, client.client_id, researcher.orcid, form["scope"].split(), redirect_uri, self.clock()
            )
        return _redirect(redirect_uri, state, code=code)

    def _signed_in(self, form) -> tuple[Researcher | None, str]:
        if form.get("mode") == "register":
            given, family = form.get("given_names", "").strip(), form.get("family_names", "").strip()
            email = form.get("register_email", "").strip().lower() or None
            if not given:
                return None, "Given names are required to register."
            if email and any(r.email == email for r in self._researchers.values()):
                return None, f"An ORCID record already uses {email}; sign in instead."
            return self.create_researcher(given, family, email), ""
        if form.get("researcher"):
            found = self._researchers.get(form["researcher"])
            return (found, "") if found else (None, "Unknown researcher.")
        email = form.get("signin_email", "").strip().lower()
        found = next((r for r in self._researchers.values() if email and r.email == email), None)
        return (found, "") if found else (None, "No researcher with that email; choose one or register.")

    def _new_code(self) -> str:
        alphabet = string.ascii_letters + string.digits
        while True:
            code = "".join(secrets.choice(alphabet) for _ in range(6))
            if code not in self._grants:
                return code

    def _client_credentials(self) -> tuple[str, str]:
        auth = request.authorization
        if auth and auth.type == "basic" and auth.username:
            return auth.username, auth.password or ""
        return request.form.get("client_id", ""), request.form.get("client_secret", "")

    def _authenticated_client(self) -> Client:
        client_id, secret = self._client_credentials()
        _note_client(client_id or None)
        client = self._clients.get(client_id)
        if client is None or not secrets.compare_digest(client.client_secret, secret):
            raise OAuthError(401, "invalid_client", "Bad client credentials")
        return client

    def _token(self) -> Response:
        form = request.form
        grant_type = form.get("grant_type")
        client = self._authenticated_client()
        if not grant_type:
            raise OAuthError(400, "unsupported_grant_type", "grant_type is missing")
        with self._lock:
            if grant_type == "authorization_code":
                token = self._exchange_code(client, form)
            elif grant_type == "refresh_token":
                token = self._refresh(client, form)
            elif grant_type == "client_credentials":
                token = self._new_token(client.client_id, None, form.get("scope", "/read-public").split())
            else:
                raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
            body = self._token_body(token)
        return Response(json.dumps(body), 200, content_type="application/json;charset=UTF-8")

    def _exchange_code(self, client: Client, form) -> Token:
        code = form.get("code", "")
        grant = self._grants.get(code)
        if grant is None or grant.client_id != client.client_id:
            raise OAuthError(400, "invalid_grant", f"Invalid authorization code: {code}")
        if grant.used:
            for token in self._tokens:
                if token.code == code:
                    token.revoked = True
            raise OAuthError(400, "invalid_grant", f"Reused authorization code: {code}")
        if self.clock() > grant.created + CODE_LIFETIME:
            raise OAuthError(400, "invalid_grant", f"Authorization code has expired: {code}")
        if form.get("redirect_uri", "") != grant.redirect_uri:
            raise OAuthError(400, "invalid_grant", "Redirect URI mismatch: it must be the one used to authorize")
        grant.used = True
        return self._new_token(client.client_id, grant.orcid, grant.scopes, code=code)

    def _refresh(self, client: Client, form) -> Token:
        value = form.get("refresh_token", "")
        old = next((t for t in self._tokens if t.refresh_token == value), None)
        if old is None or old.revoked or old.revoked_by_user or old.client_id != client.client_id:
            raise OAuthError(400, "invalid_grant", f"Invalid refresh token: {value}")
        scopes = form.get("scope", "").split() or list(old.scopes)
        if not set(scopes) <= set(old.scopes):
            raise OAuthError(400, "invalid_scope", f"Scope must be the same as or a subset of: {old.scope}")
        if form.get("revoke_old", "").lower() == "true":
            old.revoked = True
        token = self._new_token(client.client_id, old.orcid, scopes, code=old.code)
        if form.get("expires_in", "").isdigit():
            token.expires_at = min(old.expires_at, self.clock() + int(form["expires_in"]))
        else:
            token.expires_at = old.expires_at
        return token

    def _revoke(self) -> Response:
        client = self._authenticated_client()
        value = request.form.get("token", "")
        if not value:
            raise OAuthError(400, "invalid_request", "Please provide the token to be revoked")
        with self._lock:
            token = self._find_token(value, refresh=True)
            if token and token.client_id == client.client_id:
                token.revoked = True
        return Response(b"", 200)

    # ---- Member API ----------------------------------------------------------------------------------------------

    def _negotiate(self) -> str:
        """The response media type chosen from Accept (XML when absent); 406 when none fits."""
        accept = request.accept_mimetypes
        if not accept or accept.best == "*/*":
            return XML_TYPES[0]
        best = accept.best_match(XML_TYPES + JSON_TYPES)
        if best is None:
            raise _Reply(Response(b"", 406))
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
            raise _Reply(_invalid_token(401, "unauthorized", "An access token is required to access this resource"))
        value = header[7:].strip()
        token = self._find_token(value)
        user_revoked = token is not None and token.revoked_by_user and request.method != "DELETE"
        if token is None or token.revoked or user_revoked or token.expires_at <= self.clock():
            raise _Reply(_invalid_token(401, "invalid_token", f"Invalid access token: {value}"))
        _note_client(token.client_id)
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
            raise _Reply(Response(message or "Unsupported Media Type", 415, mimetype="text/plain"))
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

    # ---- admin ---------------------------------------------------------------------------------------------------

    def _admin_calls(self) -> Response:
        calls = [c.__dict__ for c in self.calls]
        return Response(json.dumps(calls), 200, mimetype="application/json")

    def _admin_faults(self) -> Response:
        if request.method == "DELETE":
            self.clear_faults()
            return Response(b"", 204)
        spec = request.get_json(force=True)
        kind = spec.pop("kind", "status")
        actions = {
            "status": self.fail_next,
            "timeout": self.timeout_next,
            "truncate": self.truncate_next,
            "random": self.fail_randomly,
        }
        if kind == "latency":
            self.add_latency(float(spec.get("seconds", 0)))
        elif kind in actions:
            actions[kind](**spec)
        else:
            return Response(json.dumps({"error": f"unknown fault kind {kind}"}), 400, mimetype="application/json")
        return Response(b"", 204)


class _Reply(Exception):
    """Carries a ready response out of nested API helpers."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


def _note_client(client_id: str | None) -> None:
    meta = request.environ.get("ioi.meta")
    if meta is not None:
        meta["client_id"] = client_id


def _pattern(path: str | None) -> re.Pattern[str] | None:
    return re.compile(path) if path else None


def _redirect_allowed(uri: str, registered: list[str]) -> bool:
    """Exact match, or a host-only registration covering any path on that exact scheme+host+port."""
    if not uri:
        return False
    wanted = urlsplit(uri)
    for candidate in registered:
        if uri == candidate:
            return True
        reg = urlsplit(candidate)
        if reg.path in ("", "/") and not reg.query and (reg.scheme, reg.netloc) == (wanted.scheme, wanted.netloc):
            return True
    return False


def _redirect(uri: str, state: str | None, **params: str) -> Response:
    if state is not None:
        params["state"] = state
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    response = Response(b"", 302)
    response.headers["Location"] = urlunsplit(parts._replace(query=query))
    return response


def _error_page(message: str) -> Response:
    body = (
        '<!doctype html><html><head><meta charset="utf-8"><title>ORCID sandbox: error</title></head>'
        f'<body><h1>Oops, something went wrong</h1><p class="error">{escape(message)}</p></body></html>'
    )
    return Response(body, 400, mimetype="text/html")


def _oauth_error_response(error: OAuthError) -> Response:
    body = json.dumps({"error": error.error, "error_description": error.description})
    return Response(body, error.status, content_type="application/json;charset=UTF-8")


def _invalid_token(status: int, error: str, description: str) -> Response:
    body = json.dumps({"error": error, "error_description": description})
    return Response(body, status, content_type="application/json;charset=UTF-8")


def main(argv: list[str] | None = None) -> None:
    """Run the simulator on loopback until interrupted, with one client and one researcher (for the demo)."""
    import argparse

    parser = argparse.ArgumentParser(description="Local ORCID simulator")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--client-id", default="APP-0000000000000001")
    parser.add_argument("--client-secret", default="sandbox-secret")
    parser.add_argument("--redirect-uri", action="append", default=[])
    args = parser.parse_args(argv)
    sim = OrcidSimulator()
    sim.register_client(args.client_id, args.client_secret, args.redirect_uri or ["http://127.0.0.1:5000"])
    sim.create_researcher("Sofia", "Garcia", "sofia.garcia@example.org")
    server = sim.serve(args.port).start()
    print(f"ORCID simulator at {server.url} (client {args.client_id})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
