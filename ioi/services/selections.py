"""Researchers' choices about works and affiliations (`userSelections`).

Each item has at most one live choice: a row with `selected` or with `ignored` set, and
`deleted` NULL. Choosing again the same way changes nothing; choosing the other way withdraws the
live row (`deleted = now`) and records the new choice, so history is kept. The PHP IOI only
withdrew ignored rows; withdrawing a selected row when the item is later ignored keeps one live
state per item, which is what the tasks read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import insert, select, update

from ioi.extensions import db
from ioi.models import UserSelection

Choice = Literal["selected", "ignored"]


@dataclass
class ChoiceChanges:
    """What `record_choices` found and did, by localSourceRecordID."""

    previously_selected: list[str] = field(default_factory=list)
    newly_selected: list[str] = field(default_factory=list)
    previously_ignored: list[str] = field(default_factory=list)
    newly_ignored: list[str] = field(default_factory=list)


def live_choices(orcid: str, item_type: str, ids: Iterable[str] | None = None) -> dict[str, Choice]:
    """localSourceRecordID → live choice of one person for one item type (one query)."""
    query = select(UserSelection.localSourceRecordID, UserSelection.selected, UserSelection.ignored).where(
        UserSelection.orcid == orcid, UserSelection.type == item_type, UserSelection.deleted.is_(None)
    )
    if ids is not None:
        query = query.where(UserSelection.localSourceRecordID.in_(list(ids)))
    return {local_id: "selected" if selected else "ignored" for local_id, selected, _ in db.session.execute(query)}


def is_ignored(orcid: str, item_type: str, local_id: str) -> bool:
    return live_choices(orcid, item_type, [local_id]).get(local_id) == "ignored"


def record_choices(
    orcid: str, item_type: str, selected: Iterable[str], ignored: Iterable[str], now: datetime
) -> ChoiceChanges:
    """Record a submitted form's choices in a few statements; the caller commits."""
    selected, ignored = list(dict.fromkeys(selected)), list(dict.fromkeys(ignored))
    if set(selected) & set(ignored):
        raise ValueError("an item cannot be both selected and ignored")
    current = live_choices(orcid, item_type, selected + ignored)
    changes = ChoiceChanges()
    withdraw: list[str] = []
    new_rows = []
    for local_id in selected:
        if current.get(local_id) == "selected":
            changes.previously_selected.append(local_id)
            continue
        if current.get(local_id) == "ignored":
            withdraw.append(local_id)
        changes.newly_selected.append(local_id)
        new_rows.append({"localSourceRecordID": local_id, "selected": now, "ignored": None})
    for local_id in ignored:
        if current.get(local_id) == "ignored":
            changes.previously_ignored.append(local_id)
            continue
        if current.get(local_id) == "selected":
            withdraw.append(local_id)
        changes.newly_ignored.append(local_id)
        new_rows.append({"localSourceRecordID": local_id, "selected": None, "ignored": now})
    if withdraw:
        db.session.execute(
            update(UserSelection)
            .where(
                UserSelection.orcid == orcid,
                UserSelection.type == item_type,
                UserSelection.localSourceRecordID.in_(withdraw),
                UserSelection.deleted.is_(None),
            )
            .values(deleted=now)
        )
    if new_rows:
        db.session.execute(
            insert(UserSelection), [{"orcid": orcid, "type": item_type, "deleted": None, **row} for row in new_rows]
        )
    return changes


def choices_since(item_type: str, choice: Choice, since: datetime | None) -> list[tuple[str, str, datetime]]:
    """(orcid, localSourceRecordID, when) of live choices of that kind made at or after `since`."""
    column = UserSelection.selected if choice == "selected" else UserSelection.ignored
    query = select(UserSelection.orcid, UserSelection.localSourceRecordID, column).where(
        UserSelection.type == item_type, UserSelection.deleted.is_(None), column.is_not(None)
    )
    if since is not None:
        query = query.where(column >= since)
    return [tuple(row) for row in db.session.execute(query.order_by(column))]
