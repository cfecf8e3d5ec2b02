"""The tables of IOI: the eleven legacy ones, with the legacy names, columns, types, keys and indexes.

An existing IOI MySQL database is used as it is, so nothing here may rename or retype a column;
schema improvements come as additive Alembic revisions. `tokens` and `users` have no primary key
in the legacy schema: the ORM identifies their rows by their unique column instead.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from ioi.extensions import db

INT = Integer().with_variant(mysql.INTEGER(display_width=11), "mysql", "mariadb")
LONGTEXT = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TIMESTAMP = DateTime().with_variant(mysql.TIMESTAMP(), "mysql", "mariadb")
NOW = text("CURRENT_TIMESTAMP")
TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def _added() -> Mapped[datetime]:
    return mapped_column(TIMESTAMP, nullable=False, server_default=NOW)


def _deleted() -> Mapped[datetime | None]:
    return mapped_column(TIMESTAMP, nullable=True, default=None)


class EmailTemplate(db.Model):
    __tablename__ = "emailTemplates"
    __table_args__ = (TABLE_OPTIONS,)

    templateID: Mapped[int] = mapped_column(INT, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(String(50), nullable=False)
    template: Mapped[str] = mapped_column(LONGTEXT, nullable=False)
    lastUpdated: Mapped[datetime] = mapped_column(TIMESTAMP, nullable=False, server_default=NOW)


class Group(db.Model):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("label", name="group"), TABLE_OPTIONS)

    groupID: Mapped[int] = mapped_column(INT, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(String(50), nullable=False)
    titles: Mapped[str] = mapped_column(Text, nullable=False, default="")
    titleParts: Mapped[str] = mapped_column(Text, nullable=False, default="")
    titlePartsToIgnore: Mapped[str] = mapped_column(Text, nullable=False, default="")


class Mapping(db.Model):
    __tablename__ = "mappings"
    __table_args__ = (TABLE_OPTIONS,)

    mappingID: Mapped[int] = mapped_column(INT, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(50), nullable=False)
    sourceField: Mapped[str] = mapped_column(String(50), nullable=False)
    entryType: Mapped[str] = mapped_column(String(50), nullable=False)
    place: Mapped[int | None] = mapped_column(INT, nullable=True)
    orcidField: Mapped[str] = mapped_column(String(50), nullable=False)


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        Index("process", "process"),
        Index("type", "type"),
        Index("timestamp", "timestamp"),
        TABLE_OPTIONS,
    )

    messageID: Mapped[int] = mapped_column(INT, primary_key=True, autoincrement=True)
    process: Mapped[str] = mapped_column(String(50), nullable=False)
    type: Mapped[str] = mapped_column(String(20), nullable=False)
    message: Mapped[str] = mapped_column(LONGTEXT, nullable=False)
    timestamp: Mapped[datetime] = mapped_column(TIMESTAMP, nullable=False, server_default=NOW)


class Metadata(db.Model):
    """One versioned value of the entity-attribute-value store (see services.metadata_store)."""

    __tablename__ = "metadata"
    __table_args__ = (
        UniqueConstraint("source", "idInSource", "parentRowID", "field", "place", "deleted", name="checkAll"),
        Index("value", "value", mysql_length=200),
        Index("field", "field"),
        Index("added", "added"),
        Index("parentRowID", "parentRowID"),
        Index("idInSource", "idInSource"),
        Index("sourceFieldValueDeleted", "source", "field", "value", "deleted", mysql_length={"value": 50}),
        Index("sourceFieldDeleted", "source", "field", "deleted"),
        Index("sourceIdInSourceDeleted", "source", "idInSource", "deleted"),
        TABLE_OPTIONS,
    )

    rowID: Mapped[int] = mapped_column(INT, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(50), nullable=False)
    idInSource: Mapped[str] = mapped_column(String(100), nullable=False)
    parentRowID: Mapped[int | None] = mapped_column(INT, nullable=True)
    field: Mapped[str] = mapped_column(String(200), nullable=False)
    place: Mapped[int] = mapped_column(INT, nullable=False)
    value: Mapped[str] = mapped_column(LONGTEXT, nullable=False)
    added: Mapped[datetime] = _added()
    deleted: Mapped[datetime | None] = _deleted()
    replacedByRowID: Mapped[int | None] = mapped_column(INT, nullable=True)


class Orcid(db.Model):
    """The known ORCID iD of a local person."""

    __tablename__ = "orcids"
    __table_args__ = (UniqueConstraint("orcid", name="orcid"), Index("email", "email"), TABLE_OPTIONS)

    rowID: Mapped[int] = mapped_column(
        Integer().with_variant(mysql.INTEGER(display_width=100), "mysql", "mariadb"),
        primary_key=True,
        autoincrement=True,
    )
    email: Mapped[str] = mapped_column(String(100), nullable=False)
    orcid: Mapped[str] = mapped_column(String(50), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    localPersonID: Mapped[int] = mapped_column(INT, nullable=False)
    added: Mapped[datetime] = _added()
    deleted: Mapped[datetime | None] = _deleted()


class PutCode(db.Model):
    """An item written to an ORCID record and the document that was sent."""

    __tablename__ = "putCodes"
    __table_args__ = (
        Index("added", "added"),
        Index("replacedBy", "replacedByRowID"),
        Index("deleted", "deleted"),
        Index("putCode", "putCode"),
        Index("localSourceRecordID", "localSourceRecordID"),
        Index("path", "orcid", "type", "putCode"),
        Index("type", "type"),
        Index("format", "format"),
        TABLE_OPTIONS,
    )

    rowID: Mapped[int] = mapped_column(INT, primary_key=True, autoincrement=True)
    orcid: Mapped[str] = mapped_column(String(30), nullable=False)
    type: Mapped[str] = mapped_column(String(30), nullable=False)
    putCode: Mapped[str] = mapped_column(String(30), nullable=False)
    localSourceRecordID: Mapped[str] = mapped_column(String(100), nullable=False)
    submittedData: Mapped[str] = mapped_column(LONGTEXT, nullable=False)
    format: Mapped[str] = mapped_column(String(10), nullable=False)
    apiResponse: Mapped[str] = mapped_column(Text, nullable=False)
    added: Mapped[datetime] = _added()
    deleted: Mapped[datetime | None] = _deleted()
    replacedByRowID: Mapped[int | None] = mapped_column(INT, nullable=True)


class SourceData(db.Model):
    """A raw record as harvested, versioned like metadata."""

    __tablename__ = "sourceData"
    __table_args__ = (
        Index("added", "added"),
        Index("replacedBy", "replacedByRowID"),
        Index("deleted", "deleted"),
        Index("idInSource", "idInSource"),
        Index("source", "source", "idInSource"),
        TABLE_OPTIONS,
    )

    rowID: Mapped[int] = mapped_column(INT, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(30), nullable=False)
    idInSource: Mapped[str] = mapped_column(String(100), nullable=False)
    sourceData: Mapped[str] = mapped_column(LONGTEXT, nullable=False)
    format: Mapped[str] = mapped_column(String(10), nullable=False)
    added: Mapped[datetime] = _added()
    deleted: Mapped[datetime | None] = _deleted()
    replacedByRowID: Mapped[int | None] = mapped_column(INT, nullable=True)


class Token(db.Model):
    """An OAuth token a researcher granted; the live one has `deleted` NULL."""

    __tablename__ = "tokens"
    __table_args__ = (
        UniqueConstraint("access_token", name="access_token"),
        Index("orcid", "orcid"),
        Index("deleted", "deleted"),
        TABLE_OPTIONS,
    )

    access_token: Mapped[str] = mapped_column(String(255), nullable=False)
    expiration: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    scope: Mapped[str] = mapped_column(String(200), nullable=False)
    orcid: Mapped[str] = mapped_column(String(50), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    refresh_token: Mapped[str | None] = mapped_column(String(255), nullable=True)
    deleted: Mapped[datetime | None] = _deleted()
    deletedReason: Mapped[str | None] = mapped_column(String(100), nullable=True)

    __mapper_args__ = {"primary_key": [access_token]}


class User(db.Model):
    """Who may use /admin (`admin` = 1)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("email", name="email"), TABLE_OPTIONS)

    email: Mapped[str] = mapped_column(String(100), nullable=False)
    admin: Mapped[int] = mapped_column(INT, nullable=False, default=0)
    added: Mapped[datetime] = _added()

    __mapper_args__ = {"primary_key": [email]}


class UserSelection(db.Model):
    """A researcher's choice about one work or affiliation: `selected` or `ignored`, withdrawn by `deleted`."""

    __tablename__ = "userSelections"
    __table_args__ = (TABLE_OPTIONS,)

    rowID: Mapped[int] = mapped_column(INT, primary_key=True, autoincrement=True)
    orcid: Mapped[str] = mapped_column(String(30), nullable=False)
    type: Mapped[str] = mapped_column(String(30), nullable=False)
    localSourceRecordID: Mapped[str] = mapped_column(String(255), nullable=False)
    selected: Mapped[datetime | None] = mapped_column(TIMESTAMP, nullable=True)
    ignored: Mapped[datetime | None] = mapped_column(TIMESTAMP, nullable=True)
    deleted: Mapped[datetime | None] = _deleted()


class OrcidCall(db.Model):
    """One call to ORCID, for the admin audit view; never holds a token."""

    __tablename__ = "orcidCalls"
    __table_args__ = (Index("timestamp", "timestamp"), Index("process", "process"), TABLE_OPTIONS)

    callID: Mapped[int] = mapped_column(INT, primary_key=True, autoincrement=True)
    process: Mapped[str] = mapped_column(String(50), nullable=False)
    method: Mapped[str] = mapped_column(String(10), nullable=False)
    url: Mapped[str] = mapped_column(String(500), nullable=False)
    status: Mapped[int | None] = mapped_column(INT, nullable=True)
    ms: Mapped[int] = mapped_column(INT, nullable=False)
    timestamp: Mapped[datetime] = mapped_column(TIMESTAMP, nullable=False, server_default=NOW)


class EmailBatch(db.Model):
    """A batch of invitation emails; `runLock` is set (and unique) only while it runs."""

    __tablename__ = "emailBatches"
    __table_args__ = (
        UniqueConstraint("runLock", name="runLock"),
        Index("groupType", "groupLabel", "inviteType"),
        Index("started", "started"),
        TABLE_OPTIONS,
    )

    batchID: Mapped[int] = mapped_column(INT, primary_key=True, autoincrement=True)
    groupLabel: Mapped[str] = mapped_column(String(50), nullable=False)
    inviteType: Mapped[str] = mapped_column(String(30), nullable=False)
    sentBy: Mapped[str] = mapped_column(String(100), nullable=False)
    started: Mapped[datetime] = mapped_column(TIMESTAMP, nullable=False, server_default=NOW)
    heartbeat: Mapped[datetime | None] = mapped_column(TIMESTAMP, nullable=True)
    finished: Mapped[datetime | None] = mapped_column(TIMESTAMP, nullable=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    total: Mapped[int] = mapped_column(INT, nullable=False, default=0, server_default="0")
    sent: Mapped[int] = mapped_column(INT, nullable=False, default=0, server_default="0")
    skipped: Mapped[int] = mapped_column(INT, nullable=False, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(INT, nullable=False, default=0, server_default="0")
    lastError: Mapped[str | None] = mapped_column(Text, nullable=True)
    runLock: Mapped[str | None] = mapped_column(String(20), nullable=True)


class DataVersion(db.Model):
    """A change counter per kind of data ('metadata', 'orcids'); the query API's cache compares them."""

    __tablename__ = "dataVersions"
    __table_args__ = (TABLE_OPTIONS,)

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
