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
from dataclasses import asdict, replace
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.http import HTTP_STATUS_CODES

from ioi.orcid_ids import make_orcid
from ioi.sandbox.orcid_api import EarlyReply, MemberApiViews, invalid_token_response
from ioi.sandbox.orcid_faults import Fault, FaultPlan, TokenBucket
from ioi.sandbox.orcid_model import EXPIRES_IN, Call, Client, Grant, Researcher, Token
from ioi.sandbox.orcid_oauth import OAuthError, OAuthViews, oauth_error_response
from ioi.sandbox.orcid_render import Item
from ioi.sandbox.orcid_rules import OrcidApiError, duplicate_message, schema_dir
from ioi.sandbox.server import BackgroundServer

__all__ = ["EXPIRES_IN", "Call", "Client", "Item", "OrcidSimulator", "Researcher", "Token", "main"]


class OrcidSimulator(OAuthViews, MemberApiViews):
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
            return invalid_token_response(401, "invalid_token", f"Invalid access token: {token}")
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
        app.add_url_rule("/_sandbox/state", view_func=self._admin_state, methods=["GET"])
        app.add_url_rule("/_sandbox/faults", view_func=self._admin_faults, methods=["POST", "DELETE"])
        app.register_error_handler(OAuthError, oauth_error_response)
        app.register_error_handler(OrcidApiError, self._api_error_response)
        app.register_error_handler(EarlyReply, lambda reply: reply.response)
        return app

    # ---- admin ---------------------------------------------------------------------------------------------------

    def _admin_calls(self) -> Response:
        calls = [c.__dict__ for c in self.calls]
        return Response(json.dumps(calls), 200, mimetype="application/json")

    def _admin_state(self) -> Response:
        """Researchers, clients (without secrets), token counts and stored items with their submitted XML."""
        state = {
            "researchers": [asdict(r) for r in self.researchers],
            "clients": [
                {"client_id": c.client_id, "name": c.name, "redirect_uris": c.redirect_uris} for c in self.clients
            ],
            "tokens": {
                "active": sum(not (t.revoked or t.revoked_by_user) for t in self.tokens),
                "all": len(self.tokens),
            },
            "items": [
                {"put_code": i.put_code, "orcid": i.orcid, "section": i.section, "client_id": i.client_id, "xml": i.xml}
                for i in self.items()
            ],
        }
        return Response(json.dumps(state), 200, mimetype="application/json")

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


def _pattern(path: str | None) -> re.Pattern[str] | None:
    return re.compile(path) if path else None


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
