"""The database stays compatible with existing IOI installs."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import (
    LEGACY_DUMP,
    SERVER_URL,
    create_scratch_database,
    drop_scratch_database,
    load_legacy_dump,
    load_sql_file,
    make_app,
)
from flask_migrate import upgrade

from ioi import MIGRATIONS, default_data
from ioi.extensions import db
from ioi.models import (
    DataVersion,
    EmailTemplate,
    Group,
    Mapping,
    Message,
    Metadata,
    Orcid,
    OrcidCall,
    PutCode,
    SourceData,
    Token,
    User,
    UserSelection,
)

PROJECT = Path(__file__).resolve().parent.parent
WHEN = datetime(2024, 2, 29, 13, 45, 7)
ORCID = "0000-0002-1825-0097"
needs_mariadb = pytest.mark.skipif(not SERVER_URL, reason="IOI_TEST_DATABASE_URL (MariaDB) not set")


def schema_differences(engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def head_revision() -> str:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def one_row_per_table() -> list:
    long_text = "Ωmega 🧬 " + "x" * 70000
    return [
        EmailTemplate(label="initial-test", template=long_text, lastUpdated=WHEN),
        Group(label="Staff", titles="Engineer||Librarian", titleParts="", titlePartsToIgnore=""),
        Mapping(source="dspace", sourceField="Poster", entryType="workType", place=None, orcidField="poster"),
        Message(process="harvestRepository", type="summary", message="- 1 new items", timestamp=WHEN),
        Metadata(source="local", idInSource="person_42", parentRowID=None, field="local.person.name", place=1,
                 value="Müller, Zoë", added=WHEN),
        Orcid(email="zoe@example.edu", orcid="0000-0002-1825-0097", name="Zoë Müller", localPersonID=42, added=WHEN),
        PutCode(orcid="0000-0002-1825-0097", type="work", putCode="733536", localSourceRecordID="repository_10754/1",
                submittedData="<work/>", format="xml", apiResponse="201", added=WHEN),
        SourceData(source="dspace", idInSource="10754/1", sourceData='{"id": 1}', format="JSON", added=WHEN),
        Token(access_token="gAAAAAB" + "x" * 180, expiration=datetime(2046, 1, 1),
              scope="/authenticate", orcid=ORCID, name="Zoë Müller", created=WHEN, refresh_token=None),
        User(email="admin@example.edu", admin=1, added=WHEN),
        UserSelection(orcid=ORCID, type="work", localSourceRecordID="repository_10754/1", selected=WHEN),
        OrcidCall(process="syncWorksToORCID", method="POST", url="https://api.orcid.org/v3.0/x/work", status=201,
                  ms=180, timestamp=WHEN),
        DataVersion(name="metadata", version=2**40),
    ]  # fmt: skip


def columns_of(obj) -> dict:
    return {c.key: getattr(obj, c.key) for c in sa.inspect(obj).mapper.column_attrs}


def assert_round_trip() -> None:
    """Write one row to every table through the models and read the same values back."""
    originals = one_row_per_table()
    expected = []
    for obj in originals:
        db.session.add(obj)
        db.session.flush()
        expected.append((type(obj), sa.inspect(obj).identity, columns_of(obj)))
    db.session.commit()
    db.session.expunge_all()
    for model, identity, values in expected:
        loaded = db.session.get(model, identity)
        assert loaded is not None, model.__tablename__
        got = columns_of(loaded)
        assert {k: got[k] for k in values if values[k] is not None} == {
            k: v for k, v in values.items() if v is not None
        }, model.__tablename__


def test_models_round_trip_every_table(app):
    assert len(db.metadata.tables) == 14  # the eleven legacy tables, orcidCalls, emailBatches, dataVersions
    assert_round_trip()


def test_default_rows_are_present_after_upgrade(app):
    groups = db.session.execute(sa.select(Group.label).order_by(Group.groupID)).scalars().all()
    assert groups == ["Students", "Faculty", "Postdocs"]
    labels = set(db.session.execute(sa.select(EmailTemplate.label)).scalars())
    assert labels == {"membership", "initial", "followup", "noPermissions"}
    work_fields = db.session.execute(
        sa.select(Mapping.sourceField, Mapping.orcidField).where(Mapping.entryType == "work").order_by(Mapping.place)
    ).all()
    assert work_fields[0] == ("dc.title", "title") and work_fields[-1] == ("dc.identifier.uri", "url")


def test_upgrade_command_creates_a_fresh_sqlite_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    app = make_app(url)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(url)
    assert set(sa.inspect(engine).get_table_names()) == set(db.metadata.tables) | {"alembic_version"}
    # SQLite has one namespace for index names, so they carry their table's name there.
    differences = schema_differences(engine)
    assert {kind for kind, _ in differences} <= {"add_index", "remove_index"}
    added = {(i.table.name, i.name) for kind, i in differences if kind == "add_index"}
    removed = {(i.table.name, i.name) for kind, i in differences if kind == "remove_index"}
    assert removed == {(table, f"{table}_{name}") for table, name in added}
    engine.dispose()


def test_baseline_refuses_a_partial_ioi_database(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'partial.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE metadata (rowID INTEGER PRIMARY KEY)"))
    app = make_app(url)
    with app.app_context(), pytest.raises(SystemExit):
        upgrade()
    assert "missing tables: emailTemplates" in caplog.text
    engine.dispose()


def test_ioi_sql_defaults_match_the_package_defaults():
    text = (PROJECT / "ioi.sql").read_text(encoding="utf-8")
    assert f"VALUES ('{head_revision()}')" in text, "ioi.sql must record the current schema revision"
    for template in default_data.EMAIL_TEMPLATES:
        assert f"'{template['label']}'" in text


# --- MariaDB: the project's ioi.sql and the PHP IOI's own dump ---------------------------------


def table_checksums(engine) -> dict[str, str]:
    sums = {}
    with engine.connect() as conn:
        for table in sorted(sa.inspect(engine).get_table_names()):
            if table == "alembic_version":
                continue
            rows = conn.execute(sa.select(sa.Table(table, sa.MetaData(), autoload_with=conn))).all()
            sums[table] = hashlib.sha256(repr(sorted(map(tuple, rows), key=repr)).encode()).hexdigest()
    return sums


@pytest.fixture
def scratch_mariadb():
    name, url = create_scratch_database("ioi_schema")
    yield url
    drop_scratch_database(name)


@needs_mariadb
def test_ioi_sql_creates_exactly_the_models_schema(scratch_mariadb):
    load_sql_file(scratch_mariadb, (PROJECT / "ioi.sql").read_text(encoding="utf-8"))
    engine = sa.create_engine(scratch_mariadb)
    assert schema_differences(engine) == []
    app = make_app(scratch_mariadb)
    with app.app_context():
        upgrade()  # nothing to do: ioi.sql carries the head revision
        assert db.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        groups = db.session.execute(sa.select(Group).order_by(Group.groupID)).scalars().all()
        assert [columns_of(g) for g in groups] == default_data.GROUPS
        mappings = db.session.execute(sa.select(Mapping).order_by(Mapping.mappingID)).scalars().all()
        assert [columns_of(m) for m in mappings] == default_data.MAPPINGS
        templates = db.session.execute(sa.select(EmailTemplate).order_by(EmailTemplate.templateID)).scalars().all()
        assert [(t.templateID, t.label, t.template) for t in templates] == [
            (t["templateID"], t["label"], t["template"]) for t in default_data.EMAIL_TEMPLATES
        ]
        assert_round_trip()
        db.engine.dispose()
    engine.dispose()


@needs_mariadb
@pytest.mark.skipif(not LEGACY_DUMP.exists(), reason="../shared/legacy/ioi-2019.sql not available")
def test_legacy_2019_database_upgrades_unchanged_and_works_through_the_models(scratch_mariadb):
    load_legacy_dump(scratch_mariadb)
    engine = sa.create_engine(scratch_mariadb)
    before = table_checksums(engine)
    legacy_templates = dict(engine.connect().execute(sa.text("SELECT label, template FROM emailTemplates")).all())

    app = make_app(scratch_mariadb)
    with app.app_context():
        upgrade()
        assert db.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        after = table_checksums(engine)
        assert {t: after[t] for t in before} == before, "the upgrade changed existing data"
        assert schema_differences(engine) == []
        # The PHP IOI's rows are read through the models as they are.
        templates = {t.label: t.template for t in db.session.execute(sa.select(EmailTemplate)).scalars()}
        assert templates == legacy_templates
        faculty = db.session.execute(sa.select(Group).where(Group.label == "Faculty")).scalar_one()
        assert faculty.titlePartsToIgnore == "Professor Emeritus||Courtesy Professor"
        assert_round_trip()
        upgrade()  # running it again is harmless
        db.engine.dispose()
    engine.dispose()
