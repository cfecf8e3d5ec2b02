"""Fixtures built on the real application factory.

Tests run on SQLite by default. With IOI_TEST_DATABASE_URL set to a MySQL/MariaDB server URL
(e.g. mysql+pymysql://root@127.0.0.1:3306/), each test session creates its own scratch database
on that server and drops it at the end. Every test starts from the migrated schema with the
default rows only. Any attempt to reach a non-loopback address fails the test.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from ioi import create_app
from ioi.extensions import db

# Tests never read a developer's own .env: every setting a test needs is passed explicitly.
os.environ["IOI_ENV_FILE"] = os.devnull

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
TEST_SECRET = "test-secret-key-0123456789abcdef"
SERVER_URL = os.environ.get("IOI_TEST_DATABASE_URL", "").strip()


def _allowed(address) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Fail fast if code under test tries to reach anything but loopback."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guard(sock, address, _real):
        if not _allowed(address):
            raise AssertionError(f"test tried to reach the network: {address!r}")
        return _real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", lambda s, a: guard(s, a, real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda s, a: guard(s, a, real_connect_ex))


def server_database_url(name: str) -> str:
    """URL of database `name` on the IOI_TEST_DATABASE_URL server."""
    return sa.make_url(SERVER_URL).set(database=name, query={"charset": "utf8mb4"}).render_as_string(False)


def create_scratch_database(prefix: str = "ioi_test") -> tuple[str, str]:
    """Create an empty utf8mb4 database on the MariaDB test server; returns (name, url)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(sa.make_url(SERVER_URL).set(database=""))
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    engine.dispose()
    return name, server_database_url(name)


LEGACY_DUMP = SHARED / "legacy" / "ioi-2019.sql"


def load_sql_file(url: str, sql: str) -> None:
    """Run a whole SQL script (many statements) on a MariaDB database."""
    import pymysql

    parsed = sa.make_url(url)
    conn = pymysql.connect(
        host=parsed.host,
        port=parsed.port or 3306,
        user=parsed.username,
        password=parsed.password or "",
        database=parsed.database,
        charset="utf8mb4",
        client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            while cursor.nextset():
                pass
        conn.commit()
    finally:
        conn.close()


def load_legacy_dump(url: str) -> None:
    """Load the PHP IOI's 2019 dump into the (scratch) database at `url`, not into `ioi`."""
    import re

    dump = re.sub(r"^(CREATE DATABASE|USE) .*$", "", LEGACY_DUMP.read_text(encoding="utf-8"), flags=re.MULTILINE)
    load_sql_file(url, dump)


def drop_scratch_database(name: str) -> None:
    engine = sa.create_engine(sa.make_url(SERVER_URL).set(database=""))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if SERVER_URL:
        name, url = create_scratch_database()
        yield url
        drop_scratch_database(name)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'ioi-test.sqlite'}"


def make_app(database_url: str, **overrides):
    """An app on the given database with test settings; `overrides` win."""
    config = {
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": database_url,
        "TESTING": True,
        "IR_EMAIL": "repository@example.edu",
        "INSTITUTION_ABBREVIATION": "TU",
        "INSTITUTION_NAME": "Test University",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": 1,  # nothing listens there: a test that sends mail must start its own server
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture(scope="session")
def migrated(database_url):
    """Runs the migrations once per session."""
    app = make_app(database_url)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_url


@pytest.fixture
def app(migrated):
    app = make_app(migrated)
    with app.app_context():
        _reset_tables()
        yield app
        db.session.remove()
        db.engine.dispose()


def _reset_tables() -> None:
    from ioi import default_data
    from ioi.models import EmailTemplate, Group, Mapping

    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())
        conn.execute(sa.insert(Group.__table__), default_data.GROUPS)
        conn.execute(sa.insert(Mapping.__table__), default_data.MAPPINGS)
        conn.execute(sa.insert(EmailTemplate.__table__), default_data.EMAIL_TEMPLATES)


@pytest.fixture
def query_app(app, migrated):
    """Builds apps with query settings on the test database (emptied by `app`); their engines are disposed after."""
    built = []

    def build(**settings):
        built.append(make_app(migrated, **settings))
        return built[-1]

    yield build
    for each in built:
        with each.app_context():
            db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def statements(app):
    """Counts SQL statements: `with statements() as count: ...; count.value`; their text in `count.texts`."""
    from contextlib import contextmanager

    class Counter:
        value = 0

        def __init__(self):
            self.texts: list[str] = []

    @contextmanager
    def counting():
        counter = Counter()

        def on_execute(conn, cursor, statement, *args, **kwargs):
            counter.value += 1
            counter.texts.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", on_execute)
        try:
            yield counter
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", on_execute)

    return counting


class _Mailbox:
    """Messages received by the test SMTP server: (envelope sender, recipients, parsed message)."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        import email
        from email import policy

        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on loopback; yields (port, mailbox)."""
    from aiosmtpd.controller import Controller

    mailbox = _Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, mailbox
    controller.stop()


@pytest.fixture
def mail_app(migrated, smtp_server):
    """Like `app`, with SMTP pointed at the test server; yields (app, mailbox)."""
    port, mailbox = smtp_server
    app = make_app(migrated, SMTP_PORT=port, EMAIL_REPORT_LEVEL="allChanges")
    with app.app_context():
        _reset_tables()
        yield app, mailbox
        db.session.remove()
        db.engine.dispose()
