"""Every setting of IOI, read from the environment or a `.env` file and checked in one place.

Names are those of the PHP IOI's `constants.php`, so an existing deployment keeps its vocabulary.
A bad value stops start-up with a `ConfigError` naming the setting.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# ORCID hosts are data, chosen by ORCID_PRODUCTION; each can still be overridden one by one.
ORCID_ENDPOINTS = {
    True: {
        "OAUTH_AUTHORIZATION_URL": "https://orcid.org/oauth/authorize",
        "OAUTH_TOKEN_URL": "https://orcid.org/oauth/token",
        "OAUTH_REVOKE_URL": "https://orcid.org/oauth/revoke",
        "ORCID_API_URL": "https://api.orcid.org/v3.0/",
        "PUBLIC_API_URL": "https://pub.orcid.org/v3.0/",
        "ORCID_LINK_BASE_URL": "https://orcid.org/",
    },
    False: {
        "OAUTH_AUTHORIZATION_URL": "https://sandbox.orcid.org/oauth/authorize",
        "OAUTH_TOKEN_URL": "https://sandbox.orcid.org/oauth/token",
        "OAUTH_REVOKE_URL": "https://sandbox.orcid.org/oauth/revoke",
        "ORCID_API_URL": "https://api.sandbox.orcid.org/v3.0/",
        "PUBLIC_API_URL": "https://pub.sandbox.orcid.org/v3.0/",
        "ORCID_LINK_BASE_URL": "https://sandbox.orcid.org/",
    },
}

# Where each DSpace version serves its REST API and OAI-PMH, relative to the repository URL.
DSPACE_PATHS = {
    "5": {"REPOSITORY_API_URL": "/rest/", "REPOSITORY_OAI_URL": "/oai/request"},
    "6": {"REPOSITORY_API_URL": "/rest/", "REPOSITORY_OAI_URL": "/oai/request"},
    "7": {"REPOSITORY_API_URL": "/server/api/", "REPOSITORY_OAI_URL": "/server/oai/request"},
}

URL_SETTINGS = (
    "OAUTH_AUTHORIZATION_URL",
    "OAUTH_TOKEN_URL",
    "OAUTH_REVOKE_URL",
    "ORCID_API_URL",
    "PUBLIC_API_URL",
    "ORCID_LINK_BASE_URL",
    "REPOSITORY_URL",
    "REPOSITORY_API_URL",
    "REPOSITORY_OAI_URL",
    "OAUTH_REDIRECT_URI",
    "LOCAL_LIBGUIDE_URL",
    "LOCAL_TRAINING_URL",
)

HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:\d+)?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
RINGGOLD = re.compile(r"^\d+$")
ROR = re.compile(r"^https://ror\.org/0[a-z0-9]{6}\d{2}$")


class ConfigError(RuntimeError):
    """A setting is missing or has a value IOI cannot use."""


class Settings(BaseSettings):
    """IOI's settings; field names are the environment variable names."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", env_ignore_empty=True, validate_default=True)

    # Demo mode: the embedded SQLite database, generated secret, demo login.
    IOI_DEMO: bool = False
    SECRET_KEY: str | None = None
    # How many reverse proxies stand in front of IOI (their X-Forwarded-* headers are trusted).
    IOI_PROXY_COUNT: int = 0

    # Institution
    INSTITUTION_ABBREVIATION: str = "IOI"
    INSTITUTION_NAME: str = "Example University"
    INSTITUTION_CITY: str = "Example City"
    INSTITUTION_COUNTRY: str = "US"
    INSTITUTION_RINGGOLD_ID: str = ""
    INSTITUTION_ROR_ID: str = ""
    IR_EMAIL: str = "repository@example.edu"
    LOCAL_LIBGUIDE_URL: str = ""
    LOCAL_TRAINING_URL: str = ""
    LOCAL_COLORS: str = "#2f6f9f #a6ce39 #e08e0b #7b4f9d #c0392b #16a085 #7f8c8d"
    EMAIL_REPORT_LEVEL: Literal["allChanges", "errorsOnly", ""] = ""

    # Campus login: `ldap` (default) or `header` (attributes set by a SAML/Shibboleth SP)
    IOI_AUTH: Literal["ldap", "header"] = "ldap"
    SSO_HEADER_PERSON_ID: str = "X-Ioi-Person-Id"
    SSO_HEADER_EMAIL: str = "X-Ioi-Email"
    SSO_HEADER_NAME: str = "X-Ioi-Name"
    SSO_HEADER_TITLE: str = "X-Ioi-Title"
    SSO_HEADER_DEPARTMENT: str = "X-Ioi-Department"
    SSO_HEADER_START_DATE: str = "X-Ioi-Start-Date"

    # LDAP (campus login)
    LDAP_ACCOUNT_SUFFIX: str = ""
    LDAP_BIND_DN_TEMPLATE: str = ""
    LDAP_SEARCH_FILTER: str = "(cn={username})"
    LDAP_START_TLS: bool = False
    LDAP_CA_FILE: str = ""
    LDAP_HOSTNAME_SSL: str = ""
    LDAP_BASE_DN: str = ""
    LDAP_STUDENT_DN_STRING: str = ""
    LDAP_PERSON_ID_ATTRIBUTE: str = "employeeID"
    LDAP_EMAIL_ATTRIBUTE: str = "mail"
    LDAP_NAME_ATTRIBUTE: str = "displayName"
    LDAP_TITLE_ATTRIBUTE: str = "title"
    LDAP_DEPARTMENT_ATTRIBUTE: str = "department"
    LDAP_START_DATE_ATTRIBUTE: str = "whenCreated"

    # Database
    DATABASE_URL: str | None = None
    MYSQL_USER: str | None = None
    MYSQL_PW: str = ""
    MYSQL_HOST: str = "localhost"
    MYSQL_DB: str = "ioi"

    # Email
    EMAIL_SEND_DELAY: float = 1.0
    SMTP_HOST: str = "localhost"
    SMTP_PORT: int = 25
    SMTP_USER: str = ""
    SMTP_PASSWORD: str = ""
    SMTP_STARTTLS: bool = False

    # DSpace
    DSPACE_VERSION: Literal["5", "6", "7"] = "6"
    DSPACE_REQUEST_DELAY: float = 0.1
    REPOSITORY_USER: str = ""
    REPOSITORY_PW: str = ""
    REPOSITORY_BASE_URL: str = "repository.example.edu"
    REPOSITORY_URL: str | None = None
    REPOSITORY_API_URL: str | None = None
    REPOSITORY_OAI_URL: str | None = None
    REPOSITORY_OAI_ID_PREFIX: str | None = None
    ORCID_ENABLED_FIELDS: str = "dc.contributor.author dc.contributor.advisor dc.contributor.committeemember"

    # ORCID
    ORCID_MEMBER: bool = True
    ORCID_PRODUCTION: bool = False
    OAUTH_CLIENT_ID: str = ""
    OAUTH_CLIENT_SECRET: str = ""
    OAUTH_REDIRECT_URI: str = "http://localhost:5000/orcid"
    OAUTH_AUTHORIZATION_URL: str | None = None
    OAUTH_TOKEN_URL: str | None = None
    OAUTH_REVOKE_URL: str | None = None
    ORCID_API_URL: str | None = None
    PUBLIC_API_URL: str | None = None
    ORCID_LINK_BASE_URL: str | None = None
    ORCID_MAX_RPS: float = 20.0
    ORCID_BURST: int = 30
    TOKEN_ENCRYPTION_KEY: str = ""

    # Query API
    QUERY_API_KEYS: str = ""
    QUERY_ALLOWED_IPS: str = ""
    QUERY_ID_PATTERN: str = r"\d{1,12}"
    QUERY_CACHE_MB: int = 64  # finished responses kept per web worker; 0 turns the cache off
    QUERY_CACHE_SECONDS: int = 300  # longest a cached response is reused (for writes made outside IOI)

    @field_validator("INSTITUTION_COUNTRY")
    @classmethod
    def _country(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{2}", value):
            raise ValueError("must be an ISO 3166-1 alpha-2 code such as US or SA")
        return value

    @field_validator("IR_EMAIL")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL.match(value):
            raise ValueError("must be an email address")
        return value

    @field_validator("INSTITUTION_RINGGOLD_ID")
    @classmethod
    def _ringgold(cls, value: str) -> str:
        if value and not RINGGOLD.match(value):
            raise ValueError("must be the numeric Ringgold id")
        return value

    @field_validator("INSTITUTION_ROR_ID")
    @classmethod
    def _ror(cls, value: str) -> str:
        if value and not ROR.match(value):
            raise ValueError("must be a full ROR id such as https://ror.org/01q3tbs38")
        return value

    @field_validator("LOCAL_COLORS")
    @classmethod
    def _colours(cls, value: str) -> str:
        bad = [c for c in value.replace(",", " ").split() if not HEX_COLOUR.match(c)]
        if bad:
            raise ValueError(f"colours must be #rrggbb values; not {', '.join(bad)}")
        return value

    @field_validator("REPOSITORY_BASE_URL")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not HOSTNAME.match(value):
            raise ValueError("must be a host name only, such as repository.example.edu")
        return value

    @field_validator("LDAP_BIND_DN_TEMPLATE", "LDAP_SEARCH_FILTER")
    @classmethod
    def _username_placeholder(cls, value: str) -> str:
        if value and "{username}" not in value:
            raise ValueError("must contain {username}")
        return value

    @field_validator("EMAIL_SEND_DELAY", "DSPACE_REQUEST_DELAY")
    @classmethod
    def _delay(cls, value: float) -> float:
        if not 0 <= value <= 60:
            raise ValueError("must be a number of seconds between 0 and 60")
        return value

    @field_validator("QUERY_CACHE_MB")
    @classmethod
    def _cache_size(cls, value: int) -> int:
        if not 0 <= value <= 4096:
            raise ValueError("must be a number of megabytes between 0 (no cache) and 4096")
        return value

    @field_validator("QUERY_CACHE_SECONDS")
    @classmethod
    def _cache_age(cls, value: int) -> int:
        if not 1 <= value <= 86400:
            raise ValueError("must be a number of seconds between 1 and 86400")
        return value

    @field_validator("ORCID_MAX_RPS")
    @classmethod
    def _rate(cls, value: float) -> float:
        if not 0 < value <= 24:
            raise ValueError("must be above 0 and at most 24 (ORCID's member API limit)")
        return value

    @field_validator("ORCID_BURST")
    @classmethod
    def _burst(cls, value: int) -> int:
        if not 1 <= value <= 40:
            raise ValueError("must be between 1 and 40 (ORCID's burst limit)")
        return value

    @field_validator("TOKEN_ENCRYPTION_KEY")
    @classmethod
    def _fernet_key(cls, value: str) -> str:
        if value:
            try:
                Fernet(value.encode())
            except (ValueError, TypeError):
                raise ValueError("must be a Fernet key (Fernet.generate_key())") from None
        return value

    @field_validator("QUERY_ALLOWED_IPS")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in value.replace(",", " ").split():
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or network: {item}") from None
        return value

    @field_validator("QUERY_ID_PATTERN")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("IOI_PROXY_COUNT")
    @classmethod
    def _proxies(cls, value: int) -> int:
        if not 0 <= value <= 5:
            raise ValueError("must be the number of reverse proxies in front of IOI, 0 to 5")
        return value

    @field_validator("SMTP_PORT")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError("must be a TCP port number")
        return value

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        for name, url in ORCID_ENDPOINTS[self.ORCID_PRODUCTION].items():
            if getattr(self, name) is None:
                setattr(self, name, url)
        if self.REPOSITORY_URL is None:
            self.REPOSITORY_URL = f"https://{self.REPOSITORY_BASE_URL}"
        base = self.REPOSITORY_URL.rstrip("/")
        for name, path in DSPACE_PATHS[self.DSPACE_VERSION].items():
            if getattr(self, name) is None:
                setattr(self, name, base + path)
        if self.REPOSITORY_OAI_ID_PREFIX is None:
            self.REPOSITORY_OAI_ID_PREFIX = f"oai:{self.REPOSITORY_BASE_URL}:"
        for name in URL_SETTINGS:
            value = getattr(self, name)
            if value and not _is_http_url(value):
                raise ValueError(f"{name}: not an http(s) URL: {value!r}")
        if not self.SECRET_KEY and not self.IOI_DEMO:
            raise ValueError("SECRET_KEY: required (a long random string); only the demo runs without one")
        if self.SECRET_KEY and len(self.SECRET_KEY) < 16 and not self.IOI_DEMO:
            raise ValueError("SECRET_KEY: too short, use at least 16 random characters")
        return self

    @property
    def orcid_enabled_fields(self) -> list[str]:
        return self.ORCID_ENABLED_FIELDS.replace(",", " ").split()

    @property
    def ldap_hosts(self) -> list[str]:
        return self.LDAP_HOSTNAME_SSL.split()

    @property
    def query_api_keys(self) -> list[str]:
        return self.QUERY_API_KEYS.replace(",", " ").split()

    @property
    def query_allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(i, strict=False) for i in self.QUERY_ALLOWED_IPS.replace(",", " ").split()]

    @property
    def token_key(self) -> bytes:
        """The Fernet key encrypting stored ORCID tokens: TOKEN_ENCRYPTION_KEY, else derived from SECRET_KEY."""
        if self.TOKEN_ENCRYPTION_KEY:
            return self.TOKEN_ENCRYPTION_KEY.encode()
        secret = (self.SECRET_KEY or "ioi-demo").encode()
        return base64.urlsafe_b64encode(hashlib.sha256(b"ioi-token-key:" + secret).digest())

    @property
    def chart_colours(self) -> list[str]:
        return self.LOCAL_COLORS.replace(",", " ").split()

    def database_url(self, instance_path: Path) -> str:
        """DATABASE_URL, else a MySQL URL from the legacy MYSQL_* settings, else embedded SQLite."""
        if self.DATABASE_URL:
            return self.DATABASE_URL
        if self.MYSQL_USER:
            return URL.create(
                "mysql+pymysql",
                username=self.MYSQL_USER,
                password=self.MYSQL_PW or None,
                host=self.MYSQL_HOST,
                database=self.MYSQL_DB,
                query={"charset": "utf8mb4"},
            ).render_as_string(hide_password=False)
        return f"sqlite:///{instance_path / 'ioi.sqlite'}"


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def load_settings(overrides: dict | None = None, env_file: Path | None = None) -> Settings:
    """Read settings from the environment and the env file (IOI_ENV_FILE, default `.env` in the
    project); explicit overrides win. Raises ConfigError."""
    if env_file is None:
        env_file = Path(os.environ.get("IOI_ENV_FILE") or PROJECT_ROOT / ".env")
    try:
        return Settings(_env_file=env_file if env_file.exists() else None, **(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if name:
            value = error.get("input")
            lines.append(f"{name}: {message} (got {value!r})")
        else:
            lines.append(message)
    return "Invalid IOI configuration:\n  " + "\n  ".join(lines)
