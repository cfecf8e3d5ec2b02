"""People groups by job title (the `groups` table), and the local people they gather.

A title belongs to a group when it equals one of the group's `titles`, or contains one of its
`titleParts` and none of its `titlePartsToIgnore` (all ignoring case; lists are `||`-separated).
A person belongs to the first group, in `groupID` order, that one of their titles matches, and to
"Others" when none does. The dashboard and the invitations use the same rules.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import aliased

from ioi.extensions import db
from ioi.models import Group, Metadata

OTHERS = "Others"
SOURCE = "local"
RELATION = "local.personOrgRelation.id"


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(part for part in (text or "").split("||") if part.strip())


@dataclass(frozen=True)
class GroupRule:
    """One row of `groups`, ready to match titles (lists as written in the table)."""

    label: str
    titles: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    @cached_property
    def _lower(self) -> tuple[set[str], tuple[str, ...], tuple[str, ...]]:
        return (
            {" ".join(t.split()).lower() for t in self.titles},
            tuple(p.lower() for p in self.parts),  # kept as written: "prof " with its space
            tuple(" ".join(i.split()).lower() for i in self.ignore),
        )

    def matches(self, title: str | None) -> bool:
        """True when this job title belongs to the group."""
        text = " ".join((title or "").split()).lower()
        if not text:
            return False
        titles, parts, ignore = self._lower
        if text in titles:
            return True
        padded = text + " "  # so that "Assistant Prof" contains "prof ", but "Professional" does not
        if any(part in padded for part in parts):
            return not any(ignored in text for ignored in ignore)
        return False

    def describe(self) -> str:
        """How the group is chosen, in words, for the admin pages."""
        rules = []
        if self.titles:
            rules.append("job title is one of: " + "; ".join(t.strip() for t in self.titles))
        if self.parts:
            rule = "job title contains: " + "; ".join(f"“{p}”" for p in self.parts)
            if self.ignore:
                rule += ", except titles containing: " + "; ".join(i.strip() for i in self.ignore)
            rules.append(rule)
        return " or ".join(rules) or "no titles configured"


def load_groups() -> list[GroupRule]:
    """The groups in `groupID` order."""
    rows = db.session.execute(select(Group).order_by(Group.groupID)).scalars()
    return [
        GroupRule(g.label, tuple(_split(g.titles)), tuple(_split(g.titleParts)), tuple(_split(g.titlePartsToIgnore)))
        for g in rows
    ]


def group_labels(groups: list[GroupRule]) -> list[str]:
    """Group labels in order, then Others."""
    return [g.label for g in groups] + [OTHERS]


def group_of(titles: list[str], groups: list[GroupRule]) -> str:
    """The first group (in order) matching any of these titles, else Others."""
    for group in groups:
        if any(group.matches(t) for t in titles):
            return group.label
    return OTHERS


@dataclass
class PersonTitles:
    """A local person's job titles: all of them, and those of positions they hold now."""

    all: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)

    @property
    def is_active(self) -> bool:
        return bool(self.active)


def person_titles(today: date) -> dict[str, PersonTitles]:
    """Job titles of every local person (key `person_{id}`), in one query.

    A position is active when it has started (or has no start date) and has no end date; its
    title may be empty, so `active` holds "" for an untitled current position.
    """
    relation, child = aliased(Metadata), aliased(Metadata)
    query = (
        select(relation.idInSource, relation.rowID, child.field, child.value)
        .join(child, child.parentRowID == relation.rowID)
        .where(
            relation.source == SOURCE,
            relation.field == RELATION,
            relation.deleted.is_(None),
            child.deleted.is_(None),
            child.field.in_(["local.person.title", "local.date.start", "local.date.end", "local.org.id"]),
        )
    )
    positions: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
    for key, row_id, name, value in db.session.execute(query):
        positions[(key, row_id)][name] = value
    people: dict[str, PersonTitles] = defaultdict(PersonTitles)
    for (key, _), values in positions.items():
        title = values.get("local.person.title", "")
        person = people[key]
        if title:
            person.all.append(title)
        started = values.get("local.date.start", "") <= today.isoformat()
        if started and not values.get("local.date.end"):
            person.active.append(title)
    return dict(people)
