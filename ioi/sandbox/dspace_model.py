"""The DSpace simulator's data: metadata values, person authorities, items, and DSpace's string forms."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

ORCID_ENABLED_FIELDS = ("dc.contributor.author", "dc.contributor.advisor", "dc.contributor.committeemember")
CF_ACCEPTED = 600  # DSpace's Choices.CF_ACCEPTED
CF_UNSET = -1
ORCID_SHAPE = re.compile(r"^\d{4}-\d{4}-\d{4}-(\d{3}X|\d{4})$")  # the Atmire patch's test, no checksum

# Registry order of common fields; DSpace returns values sorted by field id, then place.
_STANDARD_FIELDS = (
    "dc.contributor.advisor dc.contributor.author dc.contributor.committeemember dc.contributor.department "
    "dc.contributor.editor dc.contributor.other dc.coverage.spatial dc.creator dc.date.accessioned dc.date.available "
    "dc.date.copyright dc.date.created dc.date.issued dc.date.submitted dc.identifier dc.identifier.citation "
    "dc.identifier.govdoc dc.identifier.isbn dc.identifier.issn dc.identifier.sici dc.identifier.ismn "
    "dc.identifier.other dc.identifier.uri dc.description dc.description.abstract dc.description.provenance "
    "dc.description.sponsorship dc.description.statementofresponsibility dc.description.tableofcontents "
    "dc.description.uri dc.format dc.format.extent dc.format.medium dc.format.mimetype dc.language "
    "dc.language.iso dc.publisher dc.relation dc.relation.haspart dc.relation.hasversion "
    "dc.relation.isbasedon dc.relation.isformatof dc.relation.ispartof dc.relation.ispartofseries "
    "dc.relation.isreferencedby dc.relation.isreplacedby dc.relation.isversionof dc.relation.replaces "
    "dc.relation.requires dc.relation.uri dc.rights dc.rights.uri dc.source dc.source.uri dc.subject "
    "dc.subject.classification dc.subject.ddc dc.subject.lcc dc.subject.lcsh dc.subject.mesh dc.subject.other "
    "dc.title dc.title.alternative dc.type"
).split()


@dataclass
class MetadataValue:
    """One stored value: `key` is schema.element[.qualifier]; `authority` is a key into the authority index."""

    key: str
    value: str
    language: str | None = None
    authority: str | None = None
    confidence: int = CF_UNSET


@dataclass(frozen=True)
class Authority:
    """A person authority record of the Atmire patch; an ORCID authority when `orcid` is set."""

    key: str
    name: str
    orcid: str | None = None


@dataclass
class Item:
    """An archived item; `last_modified` is an aware UTC datetime with millisecond precision."""

    id: int
    uuid: str
    handle: str
    metadata: list[MetadataValue]
    last_modified: datetime
    withdrawn: bool = False
    collection: str = "10754/2"
    community: str = "10754/1"
    deleted: bool = False  # expunged: gone from REST, still a deleted header in OAI

    @property
    def name(self) -> str | None:
        """The item's name: its first dc.title."""
        return next((v.value for v in self.metadata if v.key == "dc.title"), None)

    def values(self, key: str) -> list[str]:
        """The stored texts of one field, in order."""
        return [v.value for v in self.metadata if v.key == key]

    @property
    def set_specs(self) -> list[str]:
        """OAI setSpecs: communities first, then collections."""
        return ["com_" + self.community.replace("/", "_"), "col_" + self.collection.replace("/", "_")]


def authority_key(name: str, orcid: str | None = None) -> str:
    """The computed key of a person authority: md5 of the class name, last and first name (+ the iD)."""
    last, _, first = name.partition(",")
    kind = "Orcidv2AuthorityValue" if orcid else "PersonAuthorityValue"
    text = kind + last.strip() + first.strip() + (orcid or "")
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - not security, DSpace's own scheme


def person_authority(name: str, orcid: str | None = None) -> Authority:
    """An authority record for `name`, linked to an ORCID iD when given."""
    return Authority(authority_key(name, orcid), name, orcid)


def field_sort_key(key: str, registry: dict[str, int]) -> int:
    """The id of a metadata field, registering unknown fields after the standard ones."""
    if key not in registry:
        registry[key] = len(registry) + 1
    return registry[key]


def standard_registry() -> dict[str, int]:
    """A fresh field registry holding DSpace's standard Dublin Core fields in order."""
    return {key: index + 1 for index, key in enumerate(_STANDARD_FIELDS)}


def valid_key(key: object) -> bool:
    """DSpace keeps keys of 2 or 3 dot-separated non-empty parts and silently skips the rest."""
    return isinstance(key, str) and 2 <= len(key.split(".")) <= 3 and all(key.split("."))


def to_millis(when: datetime) -> datetime:
    """An aware UTC datetime cut to milliseconds (naive input is taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def java_timestamp(when: datetime, zone: tzinfo) -> str:
    """`java.sql.Timestamp.toString()` in the server zone: `2014-09-09 14:03:06.28`, `… 14:03:06.0`."""
    local = when.astimezone(zone)
    fraction = f"{local.microsecond * 1000:09d}".rstrip("0") or "0"
    return local.strftime("%Y-%m-%d %H:%M:%S") + "." + fraction


def utc_seconds(when: datetime) -> str:
    """OAI-PMH UTC datetime at second granularity."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
