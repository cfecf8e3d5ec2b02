"""Baseline: the IOI 2019 schema, eleven tables.

On a database that already holds the PHP IOI's tables this revision creates nothing (the tables
are adopted as they are, data untouched); on an empty database it creates them with the default
rows. Frozen: later changes are new revisions.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from ioi import default_data

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = (
    "emailTemplates", "groups", "mappings", "messages", "metadata", "orcids",
    "putCodes", "sourceData", "tokens", "users", "userSelections",
)  # fmt: skip
OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
INT = sa.Integer().with_variant(mysql.INTEGER(display_width=11), "mysql", "mariadb")
LONGTEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TIMESTAMP = sa.DateTime().with_variant(mysql.TIMESTAMP(), "mysql", "mariadb")
NOW = sa.text("CURRENT_TIMESTAMP")


def _pk(name="rowID", type_=INT):
    return sa.Column(name, type_, primary_key=True, autoincrement=True)


def _added():
    return sa.Column("added", TIMESTAMP, nullable=False, server_default=NOW)


def _deleted():
    return sa.Column("deleted", TIMESTAMP, nullable=True)


def upgrade():
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    present = [t for t in TABLES if t in existing]
    if present:
        missing = [t for t in TABLES if t not in existing]
        if missing:
            raise RuntimeError(
                f"This database holds part of an IOI schema; missing tables: {', '.join(missing)}. "
                "Restore them from your IOI backup before upgrading."
            )
        return  # an existing PHP IOI database: adopt it unchanged

    templates = op.create_table(
        "emailTemplates",
        _pk("templateID"),
        sa.Column("label", sa.String(50), nullable=False),
        sa.Column("template", LONGTEXT, nullable=False),
        sa.Column("lastUpdated", TIMESTAMP, nullable=False, server_default=NOW),
        **OPTIONS,
    )
    groups = op.create_table(
        "groups",
        _pk("groupID"),
        sa.Column("label", sa.String(50), nullable=False),
        sa.Column("titles", sa.Text, nullable=False),
        sa.Column("titleParts", sa.Text, nullable=False),
        sa.Column("titlePartsToIgnore", sa.Text, nullable=False),
        sa.UniqueConstraint("label", name="group"),
        **OPTIONS,
    )
    mappings = op.create_table(
        "mappings",
        _pk("mappingID"),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("sourceField", sa.String(50), nullable=False),
        sa.Column("entryType", sa.String(50), nullable=False),
        sa.Column("place", INT, nullable=True),
        sa.Column("orcidField", sa.String(50), nullable=False),
        **OPTIONS,
    )
    op.create_table(
        "messages",
        _pk("messageID"),
        sa.Column("process", sa.String(50), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("message", LONGTEXT, nullable=False),
        sa.Column("timestamp", TIMESTAMP, nullable=False, server_default=NOW),
        **OPTIONS,
    )
    for name in ("process", "type", "timestamp"):
        op.create_index(name, "messages", [name])

    op.create_table(
        "metadata",
        _pk(),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("idInSource", sa.String(100), nullable=False),
        sa.Column("parentRowID", INT, nullable=True),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("place", INT, nullable=False),
        sa.Column("value", LONGTEXT, nullable=False),
        _added(),
        _deleted(),
        sa.Column("replacedByRowID", INT, nullable=True),
        sa.UniqueConstraint("source", "idInSource", "parentRowID", "field", "place", "deleted", name="checkAll"),
        **OPTIONS,
    )
    op.create_index("value", "metadata", ["value"], mysql_length=200)
    for name in ("field", "added", "parentRowID", "idInSource"):
        op.create_index(name, "metadata", [name])
    op.create_index(
        "sourceFieldValueDeleted", "metadata", ["source", "field", "value", "deleted"], mysql_length={"value": 50}
    )
    op.create_index("sourceFieldDeleted", "metadata", ["source", "field", "deleted"])
    op.create_index("sourceIdInSourceDeleted", "metadata", ["source", "idInSource", "deleted"])

    op.create_table(
        "orcids",
        _pk(type_=sa.Integer().with_variant(mysql.INTEGER(display_width=100), "mysql", "mariadb")),
        sa.Column("email", sa.String(100), nullable=False),
        sa.Column("orcid", sa.String(50), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("localPersonID", INT, nullable=False),
        _added(),
        _deleted(),
        sa.UniqueConstraint("orcid", name="orcid"),
        **OPTIONS,
    )
    op.create_index("email", "orcids", ["email"])

    op.create_table(
        "putCodes",
        _pk(),
        sa.Column("orcid", sa.String(30), nullable=False),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("putCode", sa.String(30), nullable=False),
        sa.Column("localSourceRecordID", sa.String(100), nullable=False),
        sa.Column("submittedData", LONGTEXT, nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("apiResponse", sa.Text, nullable=False),
        _added(),
        _deleted(),
        sa.Column("replacedByRowID", INT, nullable=True),
        **OPTIONS,
    )
    for name, columns in (
        ("added", ["added"]),
        ("replacedBy", ["replacedByRowID"]),
        ("deleted", ["deleted"]),
        ("putCode", ["putCode"]),
        ("localSourceRecordID", ["localSourceRecordID"]),
        ("path", ["orcid", "type", "putCode"]),
        ("type", ["type"]),
        ("format", ["format"]),
    ):
        op.create_index(name, "putCodes", columns)

    op.create_table(
        "sourceData",
        _pk(),
        sa.Column("source", sa.String(30), nullable=False),
        sa.Column("idInSource", sa.String(100), nullable=False),
        sa.Column("sourceData", LONGTEXT, nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        _added(),
        _deleted(),
        sa.Column("replacedByRowID", INT, nullable=True),
        **OPTIONS,
    )
    for name, columns in (
        ("added", ["added"]),
        ("replacedBy", ["replacedByRowID"]),
        ("deleted", ["deleted"]),
        ("idInSource", ["idInSource"]),
        ("source", ["source", "idInSource"]),
    ):
        op.create_index(name, "sourceData", columns)

    op.create_table(
        "tokens",
        sa.Column("access_token", sa.String(50), nullable=False),
        sa.Column("expiration", sa.DateTime, nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("orcid", sa.String(50), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("refresh_token", sa.String(200), nullable=True),
        _deleted(),
        sa.UniqueConstraint("access_token", name="access_token"),
        **OPTIONS,
    )
    op.create_index("orcid", "tokens", ["orcid"])
    op.create_index("deleted", "tokens", ["deleted"])

    on_update = bind.dialect.name in ("mysql", "mariadb")
    op.create_table(
        "users",
        sa.Column("email", sa.String(100), nullable=False),
        sa.Column("admin", INT, nullable=False),
        sa.Column(
            "added",
            TIMESTAMP,
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP") if on_update else NOW,
        ),
        sa.UniqueConstraint("email", name="email"),
        **OPTIONS,
    )
    op.create_table(
        "userSelections",
        _pk(),
        sa.Column("orcid", sa.String(30), nullable=False),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("localSourceRecordID", sa.String(255), nullable=False),
        sa.Column("selected", TIMESTAMP, nullable=True),
        sa.Column("ignored", TIMESTAMP, nullable=True),
        _deleted(),
        **OPTIONS,
    )

    op.bulk_insert(groups, default_data.GROUPS)
    op.bulk_insert(mappings, default_data.MAPPINGS)
    op.bulk_insert(templates, default_data.EMAIL_TEMPLATES)


def downgrade():
    # Dropping the baseline would destroy an institution's data; refuse instead.
    raise RuntimeError("The IOI baseline cannot be downgraded.")
