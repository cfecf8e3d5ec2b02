"""Who may call the query API: an API key (QUERY_API_KEYS), optionally from allowed addresses (QUERY_ALLOWED_IPS).

The client address is `request.remote_addr`. Behind a reverse proxy that is the proxy's address:
the deployer must then set IOI_PROXY_COUNT to the number of trusted proxies (create_app applies
werkzeug's ProxyFix), so that remote_addr becomes the real client. X-Forwarded-For is never read
here, since any client can send it.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NOT_ENABLED = "The query API is not enabled: no API keys are configured (QUERY_API_KEYS)."
KEY_MISSING = "An API key is required: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
KEY_INVALID = "Invalid API key."
ADDRESS_DENIED = "Your address ({address}) is not allowed to use the query API."
REALM = 'Bearer realm="IOI query API"'


@dataclass(frozen=True)
class Denial:
    """Why a request is refused: status, plain-text message and extra headers."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def presented_keys(headers: Mapping[str, str]) -> list[str]:
    """The keys a request carries: a Bearer token in Authorization and/or an X-API-Key header."""
    keys = []
    scheme, _, token = (headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        keys.append(token.strip())
    if (headers.get("X-API-Key") or "").strip():
        keys.append(headers["X-API-Key"].strip())
    return keys


def key_matches(presented: str, configured: Sequence[str]) -> bool:
    """Constant-time comparison against every configured key (no early exit on a match)."""
    given = presented.encode("utf-8", "surrogateescape")
    found = False
    for key in configured:
        found |= hmac.compare_digest(given, key.encode("utf-8"))
    return found


def address_allowed(address: str | None, networks: Sequence[Network]) -> bool:
    """True when no allowlist is set, or the address lies in one of its networks."""
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def check_access(
    keys: Sequence[str], networks: Sequence[Network], address: str | None, headers: Mapping[str, str]
) -> Denial | None:
    """None when the request may proceed, else the Denial to answer (403 closed or address, 401 key)."""
    if not keys:
        return Denial(403, NOT_ENABLED)
    if not address_allowed(address, networks):
        return Denial(403, ADDRESS_DENIED.format(address=address or "unknown"))
    presented = presented_keys(headers)
    if not presented:
        return Denial(401, KEY_MISSING, {"WWW-Authenticate": REALM})
    if not any(key_matches(p, keys) for p in presented):
        return Denial(401, KEY_INVALID, {"WWW-Authenticate": f'{REALM}, error="invalid_token"'})
    return None
