"""The query API reads rows written in the PHP IOI's conventions, including a database loaded from its 2019 dump.

Rows are inserted here one by one with plain INSERTs, as the PHP `saveValue` did: an author value
with its `dspace.authority.key` child and `dc.identifier.orcid` grandchild, replaced values stamped
`deleted` with `replacedByRowID`, a withdrawn item whose rows are all deleted.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest
import sqlalchemy as sa
from conftest import (
    LEGACY_DUMP,
    SERVER_URL,
    create_scratch_database,
    drop_scratch_database,
    load_legacy_dump,
    make_app,
)
from flask_migrate import upgrade

from ioi.extensions import db

KEY = "legacy-query-key-0123456789"
AUTH = {"X-API-Key": KEY}
JANE = "0000-0002-1825-0097"
OLD = datetime(2019, 4, 16, 10, 30, 0)
NEW = datetime(2019, 9, 1, 8, 0, 0)
INSERT_METADATA = sa.text(
    "INSERT INTO metadata (source, idInSource, parentRowID, field, place, value, added, deleted, replacedByRowID) "
    "VALUES (:source, :idInSource, :parentRowID, :field, :place, :value, :added, :deleted, :replacedByRowID)"
)


class LegacyWriter:
    """Writes metadata rows one at a time, like the PHP IOI."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def row(self, source, id_in_source, field, value, place=1, parent=None, added=OLD, deleted=None, replaced_by=None):
        params = {
            "source": source,
            "idInSource": id_in_source,
            "parentRowID": parent,
            "field": field,
            "place": place,
            "value": value,
            "added": added,
            "deleted": deleted,
            "replacedByRowID": replaced_by,
        }
        return self.conn.execute(INSERT_METADATA, params).lastrowid

    def author(self, handle, name, place, key=None, orcid=None, deleted=None, orcid_deleted=None):
        author = self.row("dspace", handle, "dc.contributor.author", name, place, deleted=deleted)
        if key:
            key_row = self.row("dspace", handle, "dspace.authority.key", key, 1, author, deleted=deleted)
            if orcid:
                self.row("dspace", handle, "dc.identifier.orcid", orcid, 1, key_row, deleted=orcid_deleted or deleted)

    def item(self, handle, title, issued, kind="Article", journal="", doi="", deleted=None):
        for field, value in (
            ("dc.title", title),
            ("dc.date.issued", issued),
            ("dc.type", kind),
            ("dc.identifier.journal", journal),
            ("dc.identifier.doi", doi),
            ("dc.identifier.uri", f"http://hdl.handle.net/{handle}"),
            ("dspace.date.modified", "2019-09-01 08:00:00"),
            ("dspace.internal.itemID", handle.split("/")[1]),
        ):
            if value:
                self.row("dspace", handle, field, value, deleted=deleted)


def write_php_ioi_rows(conn: sa.Connection) -> None:
    """People, iDs and items as the PHP IOI left them after a few harvests."""
    w = LegacyWriter(conn)
    # A local person with a position, as the LDAP/CSV loaders wrote them.
    for pid, name in (("123456", "Smith, Jane"), ("654321", "Roe, Rick")):
        w.row("local", f"person_{pid}", "local.person.id", pid)
        w.row("local", f"person_{pid}", "local.person.name", name)
        w.row("local", f"person_{pid}", "local.person.email", f"{pid}@example.edu")
        relation = w.row("local", f"person_{pid}", "local.personOrgRelation.id", f"{pid}_30000_2015-09-01")
        w.row("local", f"person_{pid}", "local.person.title", "Professor", parent=relation)
    conn.execute(
        sa.text(
            "INSERT INTO orcids (email, orcid, name, localPersonID, added, deleted) VALUES "
            "('123456@example.edu', :jane, 'Jane Smith', 123456, :old, NULL), "
            "('654321@example.edu', '0000-0001-5109-3700', 'Rick Roe', 654321, :old, :new)"
        ),
        {"jane": JANE, "old": OLD, "new": NEW},
    )

    # 10754/1: title fixed by a later harvest (old row replaced), Jane by authority key + ORCID iD.
    title_new = w.row("dspace", "10754/1", "dc.title", "Coral reef resilience", added=NEW)
    w.row("dspace", "10754/1", "dc.title", "Coral reef resilence", deleted=NEW, replaced_by=title_new)
    w.row("dspace", "10754/1", "dspace.metadata.language", "en", parent=title_new, added=NEW)
    w.item("10754/1", None, "2019-03-05", journal="Coral Reefs", doi="10.1007/s00338-019-01234-5")
    w.author("10754/1", "Smith, Jane", 1, "5e7c9a2b-key", JANE)
    w.author("10754/1", "Doe, John", 2, "9b1d-key")
    # 10754/2: a conference paper of 2018.
    w.item("10754/2", "Heat stress & corals", "2018-11", kind="Conference Paper")
    w.author("10754/2", "Roe, Rick", 1)
    w.author("10754/2", "Smith, Jane", 2, "5e7c9a2b-key", JANE)
    # 10754/3: withdrawn, every row deleted.
    w.item("10754/3", "Withdrawn", "2017", deleted=NEW)
    w.author("10754/3", "Smith, Jane", 1, "5e7c9a2b-key", JANE, deleted=NEW)
    # 10754/4: the iD was taken off this author value (not Jane's work); same name though.
    w.item("10754/4", "A namesake's paper", "2016")
    w.author("10754/4", "Smith, Jane", 1, "0ff1-key", JANE, orcid_deleted=NEW)
    # 10754/5: by Rick Roe, no authority.
    w.item("10754/5", "Rick's paper", "2015", kind="Thesis")
    w.author("10754/5", "Roe, Rick", 1)


def check_answers(client) -> None:
    """What a campus system gets for these rows."""
    orcid = client.get("/query.php?tuid=123456&request=orcid&response=json", headers=AUTH)
    assert orcid.status_code == 200
    assert orcid.get_json() == {"TU ID": "123456", "Full Name": "Smith, Jane", "ORCID": JANE}

    works = client.get("/query.php?tuid=123456&request=works&response=json&year=all", headers=AUTH).get_json()
    assert [(w["Title"], w["Publication Date"], w["Type"]) for w in works] == [
        ("Coral reef resilience", "2019-03-05", "Article"),
        ("Heat stress & corals", "2018-11", "Conference Paper"),
    ]
    assert works[0]["Authors"] == "Smith, Jane||Doe, John"
    assert works[0]["DOI"] == "10.1007/s00338-019-01234-5" and works[0]["Journal"] == "Coral Reefs"
    assert works[0]["Handle"] == "http://hdl.handle.net/10754/1"
    assert works[1]["Bibtex"].startswith("@inproceedings{tu_10754_2,\n  title = {Heat stress \\& corals},")

    only_2018 = client.get("/query.php?tuid=123456&request=works&year=2018", headers=AUTH).get_json()
    assert [w["Title"] for w in only_2018] == ["Heat stress & corals"]

    # Rick's iD row was deleted: no ORCID, works found by his name.
    assert client.get("/query.php?tuid=654321&request=orcid", headers=AUTH).status_code == 404
    rick = client.get("/query.php?tuid=654321&request=works&response=csv", headers=AUTH)
    rows = list(csv.reader(io.StringIO(rick.get_data(as_text=True), newline="")))
    assert [r[1] for r in rows] == ["Title", "Heat stress & corals", "Rick's paper"]

    bulk = client.get("/query.php?tuid=all&request=orcid", headers=AUTH)
    assert [json.loads(line) for line in bulk.get_data(as_text=True).splitlines()] == [
        {"TU ID": "123456", "Full Name": "Smith, Jane", "ORCID": JANE}
    ]


def test_rows_in_the_php_conventions_are_answered(app, migrated):
    with db.engine.begin() as conn:
        write_php_ioi_rows(conn)
    keyed = make_app(migrated, QUERY_API_KEYS=KEY)
    check_answers(keyed.test_client())
    with keyed.app_context():
        db.engine.dispose()


@pytest.fixture
def legacy_database():
    """A scratch MariaDB database loaded from the PHP IOI's 2019 dump; yields its URL."""
    if not SERVER_URL:
        pytest.skip("IOI_TEST_DATABASE_URL (MariaDB) not set")
    if not LEGACY_DUMP.exists():
        pytest.skip("../shared/legacy/ioi-2019.sql not available")
    name, url = create_scratch_database("ioi_query_legacy")
    load_legacy_dump(url)
    yield url
    drop_scratch_database(name)


def test_the_php_ioi_database_is_answered_before_and_after_the_upgrade(legacy_database):
    engine = sa.create_engine(legacy_database)
    with engine.begin() as conn:
        write_php_ioi_rows(conn)
    engine.dispose()
    app = make_app(legacy_database, QUERY_API_KEYS=KEY)
    check_answers(app.test_client())  # the PHP IOI's own schema, no migration run yet
    with app.app_context():
        upgrade()
        db.engine.dispose()
    check_answers(app.test_client())
    with app.app_context():
        db.engine.dispose()
