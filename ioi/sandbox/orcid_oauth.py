"""OAuth 2.0 endpoints of the ORCID simulator: consent page, token exchange and refresh, revocation."""

from __future__ import annotations

import json
import secrets
import string
import threading
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Response, request
from markupsafe import escape

from ioi.sandbox.orcid_model import (
    CODE_LIFETIME,
    MEMBER_SCOPES,
    SCOPES,
    Client,
    Grant,
    Researcher,
    Token,
    note_client,
)


class OAuthError(Exception):
    """An OAuth failure, answered as {"error", "error_description"} JSON."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class OAuthViews:
    """/oauth/authorize, /oauth/token and /oauth/revoke. Mixed into OrcidSimulator: uses its state below and its
    create_researcher, _find_token and _new_token."""

    clock: Callable[[], float]
    _lock: threading.RLock
    _clients: dict[str, Client]
    _researchers: dict[str, Researcher]
    _tokens: list[Token]
    _grants: dict[str, Grant]

    def _checked_client(self, args) -> tuple[Client | None, str | None]:
        """The client and redirect URI of an authorize request, or (None, error message) for an error page."""
        client = self._clients.get(args.get("client_id", ""))
        note_client(client.client_id if client else None)
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
        note_client(client_id or None)
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


def oauth_error_response(error: OAuthError) -> Response:
    body = json.dumps({"error": error.error, "error_description": error.description})
    return Response(body, error.status, content_type="application/json;charset=UTF-8")
