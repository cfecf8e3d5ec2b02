"""The campus directory: check a username and password by binding as the user, then read their entry.

Active Directory style (bind as `username + account_suffix`, e.g. `jdoe@example.edu`) or OpenLDAP
style (bind as `bind_dn_template` with the username put in, e.g. `uid=jdoe,ou=people,dc=...`).
Hosts are tried in order; only an unreachable host moves on to the next one. Failures come out as
`InvalidCredentials` (the user's fault) or `DirectoryUnavailable` / `DirectoryError` (ours).
Passwords never appear in messages or logs.
"""

from __future__ import annotations

import logging
import re
import ssl
import time
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from ldap3 import NONE, SIMPLE, SUBTREE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPInvalidDnError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

if TYPE_CHECKING:
    from ioi.config import Settings

log = logging.getLogger(__name__)

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PLACEHOLDER = "{username}"

# LDAP result codes (RFC 4511) that get their own treatment.
SUCCESS = 0
SIZE_LIMIT_EXCEEDED = 4
NO_SUCH_OBJECT = 32
INVALID_DN_SYNTAX = 34
INAPPROPRIATE_AUTHENTICATION = 48
INVALID_CREDENTIALS = 49
BUSY = 51
UNAVAILABLE = 52


class DirectoryError(Exception):
    """The directory could not answer the question (misconfiguration or an unexpected reply)."""


class InvalidCredentials(DirectoryError):
    """Wrong username or password, or no such user."""


class DirectoryUnavailable(DirectoryError):
    """No directory host could be reached, answered in time, or completed TLS."""


@dataclass(frozen=True)
class DirectoryConfig:
    """Where the directory is, how to bind to it, and which attributes describe a person.

    With `bind_dn_template` set, the user binds as that DN; otherwise as `username + account_suffix`.
    A host may be a name, `name:port` or an `ldap://` / `ldaps://` URL (the URL's scheme wins over
    `use_ssl`).
    """

    hosts: tuple[str, ...]
    base_dn: str
    account_suffix: str = ""
    bind_dn_template: str = ""
    search_filter: str = "(cn={username})"
    use_ssl: bool = True
    start_tls: bool = False
    port: int | None = None
    person_id_attribute: str = "employeeID"
    email_attribute: str = "mail"
    name_attribute: str = "displayName"
    title_attribute: str = "title"
    department_attribute: str = "department"
    start_date_attribute: str = "whenCreated"
    connect_timeout: float = 5.0
    receive_timeout: int = 10  # whole seconds: ldap3 packs it into SO_RCVTIMEO as an integer
    ca_file: str | None = None
    validate_cert: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", tuple(self.hosts))
        if not self.hosts:
            raise ValueError("LDAP: no hosts given")
        if not self.base_dn:
            raise ValueError("LDAP: base DN is required")
        if self.use_ssl and self.start_tls:
            raise ValueError("LDAP: use either LDAPS (use_ssl) or StartTLS, not both")
        if PLACEHOLDER not in self.search_filter:
            raise ValueError(f"LDAP: search filter must contain {PLACEHOLDER}")
        if self.bind_dn_template:
            if PLACEHOLDER not in self.bind_dn_template:
                raise ValueError(f"LDAP: bind DN template must contain {PLACEHOLDER}")
            try:
                parse_dn(self.bind_dn_template.replace(PLACEHOLDER, "x"))
            except LDAPInvalidDnError:
                raise ValueError(f"LDAP: bind DN template is not a DN: {self.bind_dn_template!r}") from None
        if self.connect_timeout <= 0 or not isinstance(self.receive_timeout, int) or self.receive_timeout < 1:
            raise ValueError("LDAP: connect timeout must be positive, receive timeout a whole number of seconds")

    @classmethod
    def from_settings(cls, settings: Settings) -> DirectoryConfig:
        """The directory as IOI's LDAP_* settings describe it.

        LDAPS to each LDAP_HOSTNAME_SSL host, or plain LDAP upgraded with StartTLS when LDAP_START_TLS
        is set; LDAP_CA_FILE names the CA bundle that signs the directory's certificate.
        """
        return cls(
            hosts=tuple(settings.ldap_hosts),
            base_dn=settings.LDAP_BASE_DN,
            account_suffix=settings.LDAP_ACCOUNT_SUFFIX,
            bind_dn_template=settings.LDAP_BIND_DN_TEMPLATE,
            search_filter=settings.LDAP_SEARCH_FILTER,
            use_ssl=not settings.LDAP_START_TLS,
            start_tls=settings.LDAP_START_TLS,
            ca_file=settings.LDAP_CA_FILE or None,
            person_id_attribute=settings.LDAP_PERSON_ID_ATTRIBUTE,
            email_attribute=settings.LDAP_EMAIL_ATTRIBUTE,
            name_attribute=settings.LDAP_NAME_ATTRIBUTE,
            title_attribute=settings.LDAP_TITLE_ATTRIBUTE,
            department_attribute=settings.LDAP_DEPARTMENT_ATTRIBUTE,
            start_date_attribute=settings.LDAP_START_DATE_ATTRIBUTE,
        )

    @property
    def attributes(self) -> list[str]:
        return [
            self.person_id_attribute,
            self.email_attribute,
            self.name_attribute,
            self.title_attribute,
            self.department_attribute,
            self.start_date_attribute,
        ]


@dataclass(frozen=True)
class DirectoryPerson:
    """What the directory says about a person who just logged in; absent attributes are None."""

    dn: str
    person_id: str | None
    email: str | None
    name: str | None
    title: str | None
    department: str | None
    start_date: date | None


def authenticate(config: DirectoryConfig, username: str, password: str) -> DirectoryPerson:
    """Bind as the user on the first reachable host, then read their entry with that same bind.

    Raises InvalidCredentials, DirectoryUnavailable or DirectoryError.
    """
    username = (username or "").strip()
    if not USERNAME.fullmatch(username):
        raise InvalidCredentials("invalid username")
    # An empty password would make a simple bind anonymous, and "succeed": never send one.
    if not password:
        raise InvalidCredentials("empty password")

    user = bind_name(config, username)
    tls = _tls(config)
    failures = []
    for host in config.hosts:
        started = time.monotonic()
        try:
            conn = _bind(config, host, tls, user, password)
        except DirectoryUnavailable as exc:
            log.warning("LDAP bind as %s on %s: unavailable (%s) after %d ms", user, host, exc, _ms(started))
            failures.append(f"{host}: {exc}")
            continue
        except DirectoryError as exc:
            log.info("LDAP bind as %s on %s: refused (%s) after %d ms", user, host, exc, _ms(started))
            raise
        log.info("LDAP bind as %s on %s: ok after %d ms", user, host, _ms(started))
        try:
            return _read_person(config, conn, username)
        finally:
            _close(conn)
    raise DirectoryUnavailable("no directory host answered: " + "; ".join(failures))


def bind_name(config: DirectoryConfig, username: str) -> str:
    """The name the user binds as: the template DN with the username escaped, else username + suffix."""
    if config.bind_dn_template:
        return config.bind_dn_template.replace(PLACEHOLDER, escape_rdn(username))
    return username + config.account_suffix


def user_filter(config: DirectoryConfig, username: str) -> str:
    """The search filter for the user's entry, with the username escaped (RFC 4515)."""
    return config.search_filter.replace(PLACEHOLDER, escape_filter_chars(username))


def parse_start_date(value: str | None) -> date | None:
    """The date in the first 8 characters (YYYYMMDD) of a directory timestamp, or None."""
    if not value or not value[:8].isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def _tls(config: DirectoryConfig) -> Tls | None:
    if not (config.use_ssl or config.start_tls or any(h.lower().startswith("ldaps://") for h in config.hosts)):
        return None
    try:
        return Tls(
            validate=ssl.CERT_REQUIRED if config.validate_cert else ssl.CERT_NONE,
            ca_certs_file=config.ca_file,
        )
    except LDAPException as exc:
        raise DirectoryUnavailable(f"unusable TLS settings: {exc}") from None


def _bind(config: DirectoryConfig, host: str, tls: Tls | None, user: str, password: str) -> Connection:
    """An open connection bound as `user` on `host`; the connection is closed on any failure."""
    conn = None
    try:
        server = Server(
            host,
            port=config.port,
            use_ssl=config.use_ssl,
            tls=tls,
            connect_timeout=config.connect_timeout,
            get_info=NONE,
        )
        conn = Connection(
            server,
            user=user,
            password=password,
            authentication=SIMPLE,
            client_strategy=SYNC,
            read_only=True,
            auto_referrals=False,
            raise_exceptions=False,
            receive_timeout=config.receive_timeout,
        )
        conn.open(read_server_info=False)
        if config.start_tls:
            conn.start_tls(read_server_info=False)
        bound = conn.bind(read_server_info=False)
    except Exception as exc:  # ldap3 raises its own errors, OSError, and KeyError & co. on a non-LDAP reply
        _close(conn)
        raise DirectoryUnavailable(_describe(exc)) from None
    if not bound:
        result = conn.result or {}
        _close(conn)
        code = result.get("result")
        if code in (INVALID_CREDENTIALS, INAPPROPRIATE_AUTHENTICATION, NO_SUCH_OBJECT):
            raise InvalidCredentials("wrong username or password")
        if code in (BUSY, UNAVAILABLE):
            raise DirectoryUnavailable(f"server busy or unavailable ({code})")
        if code == INVALID_DN_SYNTAX:
            raise DirectoryError(
                f"the directory does not accept {user!r} as a bind name; check the account suffix / bind DN template"
            )
        raise DirectoryError(f"bind refused: {code} {result.get('description')} {result.get('message', '')}".strip())
    return conn


def _read_person(config: DirectoryConfig, conn: Connection, username: str) -> DirectoryPerson:
    started = time.monotonic()
    try:
        conn.search(
            config.base_dn,
            user_filter(config, username),
            search_scope=SUBTREE,
            attributes=config.attributes,
            size_limit=2,
        )
    except Exception as exc:  # as in _bind: whatever a broken connection or reply raises
        raise DirectoryUnavailable(f"search failed: {_describe(exc)}") from None
    result = conn.result or {}
    entries = [item for item in conn.response or [] if item.get("type") == "searchResEntry"]
    log.info(
        "LDAP search %s under %s: %s, %d entries after %d ms",
        user_filter(config, username),
        config.base_dn,
        result.get("description"),
        len(entries),
        _ms(started),
    )
    if result.get("result") not in (SUCCESS, SIZE_LIMIT_EXCEEDED):
        raise DirectoryError(
            f"search under {config.base_dn!r} failed: {result.get('result')} {result.get('description')}"
        )
    if not entries:
        # The bind worked but the entry cannot be found: to the user this is an unknown account.
        raise InvalidCredentials("no directory entry for this user")
    if len(entries) > 1:
        raise DirectoryError(f"several directory entries match {user_filter(config, username)}")
    entry = entries[0]
    values = {name.lower(): raw for name, raw in entry["raw_attributes"].items()}

    def first(attribute: str) -> str | None:
        raw = values.get(attribute.lower())
        if not raw:
            return None
        return raw[0].decode("utf-8", "replace").strip() or None

    email = first(config.email_attribute)
    return DirectoryPerson(
        dn=entry["dn"],
        person_id=first(config.person_id_attribute),
        email=email.lower() if email else None,
        name=first(config.name_attribute),
        title=first(config.title_attribute),
        department=first(config.department_attribute),
        start_date=parse_start_date(first(config.start_date_attribute)),
    )


def _close(conn: Connection | None) -> None:
    if conn is None:
        return
    try:
        conn.unbind()
    except Exception:  # closing is best effort; the answer is already decided
        pass


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
