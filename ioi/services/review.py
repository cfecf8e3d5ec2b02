"""The review form of the researcher page: which works and affiliations could go to their ORCID record.

Works come from the harvested repository metadata (matched by the person's ORCID iD on an author
value and by their name in `Surname, Given` form); affiliations are the person's positions that
carry a job title. Each item shows why it is listed and its state, computed from `putCodes` (on
ORCID) and `userSelections` (selected / ignored): a selected item not on ORCID is `waiting` until
the nightly sync task has run since it was chosen, and `failed` after that (the task keeps
retrying). A fixed number of SQL statements, however many works match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import select

from ioi.clients.orcid import OrcidClient
from ioi.config import Settings
from ioi.extensions import db
from ioi.models import PutCode, UserSelection
from ioi.services import works as works_service
from ioi.services.orcid_sync import CategoryOutcome, sync_choices
from ioi.services.people import affiliation_id, affiliation_type, read_person, sortable_name, student_titles
from ioi.services.selections import ChoiceChanges, record_choices
from ioi.services.tokens import TokenInfo
from ioi.services.work_sync import last_complete_runs

State = Literal["new", "on_orcid", "ignored", "removing", "waiting", "failed", "selected"]
AFFILIATION_TYPES = ("employment", "education")
# Items added to or removed from ORCID during one submit; ORCID takes one item per call, so a
# first submit with hundreds of works would outlast the request. The rest wait for the nightly task.
PAGE_PUSH_LIMIT = 40
# The nightly tasks that retry what the page could not send, by item type (their `messages` process).
SYNC_PROCESSES = {"work": "syncWorksToORCID", "employment": "syncAffiliationsToORCID"}
SYNC_PROCESSES["education"] = SYNC_PROCESSES["employment"]
STATE_LABELS = {
    "new": "New",
    "on_orcid": "On ORCID",
    "ignored": "Ignored",
    "removing": "Ignored, still on ORCID",
    "waiting": "Waiting",
    "failed": "Failed, will retry",
    "selected": "Selected",
}


class _Choosable:
    """What a review row shows about the researcher's choice."""

    state: State

    @property
    def checked(self) -> bool:
        return self.state not in ("ignored", "removing")

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]


@dataclass(frozen=True)
class ReviewWork(_Choosable):
    local_id: str  # repository_{handle}
    handle: str
    title: str
    journal: str
    type: str
    issued: str
    url: str
    matched_by_orcid: bool
    matched_by_name: bool
    state: State
    on_orcid: bool


@dataclass(frozen=True)
class ReviewAffiliation(_Choosable):
    local_id: str  # local_person_{personID}_{relationID}
    type: str  # employment or education
    title: str
    department: str
    start_date: str
    end_date: str
    state: State
    on_orcid: bool


@dataclass
class Review:
    """Everything the review form and the history card show for one person."""

    name: str  # the `Surname, Given` form works were matched by
    orcid: str | None
    member: bool
    works: list[ReviewWork] = field(default_factory=list)
    affiliations: list[ReviewAffiliation] = field(default_factory=list)

    def count(self, kind: str, state: State) -> int:
        items = self.works if kind == "work" else self.affiliations
        return sum(1 for item in items if item.state == state)

    @property
    def works_on_orcid(self) -> int:
        return sum(1 for w in self.works if w.on_orcid)

    @property
    def affiliations_on_orcid(self) -> int:
        return sum(1 for a in self.affiliations if a.on_orcid)


def build_review(
    person_id: str,
    display_name: str,
    orcid: str | None,
    member: bool,
    failed: Iterable[str] = (),
) -> Review:
    """The works and affiliations of one person, each with its state.

    `failed` holds localSourceRecordIDs whose push failed in this request; selected items the
    nightly task has had a chance to send since they were chosen count as failed too. Without an
    `orcid` nothing has been chosen or pushed yet, so every item is new. Non-members get works only.
    """
    person = read_person(person_id)
    name = person.name if person is not None and person.name else sortable_name(display_name)
    review = Review(name=name, orcid=orcid, member=member)
    failed = set(failed)  # this request's push failed for these

    found = works_service.find_works(orcid=orcid, name=name or None)
    on_orcid = _live_put_codes(orcid) if orcid and member else set()
    choices = _live_choices(orcid) if orcid else {}
    if member and orcid:
        failed |= _tried_since(choices, _last_sync_runs())
    for work in found:
        local_id = work.local_source_record_id
        review.works.append(
            ReviewWork(
                local_id=local_id,
                handle=work.handle,
                title=work.title or work.handle,
                journal=work.journal,
                type=work.type,
                issued=work.issued,
                url=work.uri,
                matched_by_orcid="orcid" in work.matched_by,
                matched_by_name="name" in work.matched_by,
                state=_state(("work", local_id), choices.get(("work", local_id)), on_orcid, local_id in failed, member),
                on_orcid=("work", local_id) in on_orcid,
            )
        )
    if not member or person is None:
        return review

    students = student_titles()
    for position in person.positions:
        if not position.title:
            continue
        kind = affiliation_type(position.title, students)
        local_id = affiliation_id(person.person_id, position.relation_id)
        review.affiliations.append(
            ReviewAffiliation(
                local_id=local_id,
                type=kind,
                title=position.title,
                department=position.org.department_name if position.org else "",
                start_date=position.start_date or "",
                end_date=position.end_date or "",
                state=_state((kind, local_id), choices.get((kind, local_id)), on_orcid, local_id in failed, member),
                on_orcid=(kind, local_id) in on_orcid,
            )
        )
    review.affiliations.sort(key=lambda a: a.start_date, reverse=True)
    return review


@dataclass
class RecordedChoices:
    """The choices one submit recorded, per item type (`work`, `employment`, `education`)."""

    changes: dict[str, ChoiceChanges]

    def selected(self, kind: str) -> list[str]:
        c = self.changes.get(kind)
        return (c.previously_selected + c.newly_selected) if c else []

    def ignored(self, kind: str) -> list[str]:
        c = self.changes.get(kind)
        return (c.previously_ignored + c.newly_ignored) if c else []


def record_review(review: Review, checked: Iterable[str], now: datetime) -> RecordedChoices:
    """Record the submitted form: every listed item checked is selected, every other one ignored.

    Ids that the review does not list are disregarded (a form cannot choose another person's items).
    Flushes only; the caller commits.
    """
    if not review.orcid:
        raise ValueError("choices are recorded under an ORCID iD: connect first")
    checked = set(checked)
    groups: dict[str, list[str]] = {"work": [w.local_id for w in review.works]}
    for kind in AFFILIATION_TYPES:
        groups[kind] = [a.local_id for a in review.affiliations if a.type == kind]
    changes = {}
    for kind, ids in groups.items():
        if not ids:
            continue
        selected = [i for i in ids if i in checked]
        ignored = [i for i in ids if i not in checked]
        changes[kind] = record_choices(review.orcid, kind, selected, ignored, now)
    db.session.flush()
    return RecordedChoices(changes)


@dataclass
class SubmitOutcome:
    """The per-category counts a submit reports (§4.7): publications and affiliations."""

    member: bool
    works: CategoryOutcome
    affiliations: CategoryOutcome
    needs_reconsent: bool = False
    deferred: int = 0  # selected items left for the nightly task (beyond the per-request limit)

    @property
    def failed_ids(self) -> set[str]:
        return set(self.works.failed_ids) | set(self.affiliations.failed_ids)

    @property
    def failed_total(self) -> int:
        return self.works.failed + self.affiliations.failed


def push(
    settings: Settings,
    client: OrcidClient | None,
    review: Review,
    recorded: RecordedChoices,
    token: TokenInfo | None,
    now: datetime,
    limit: int = PAGE_PUSH_LIMIT,
) -> SubmitOutcome:
    """For members, write the recorded choices to ORCID now (add selected, delete ignored) through the
    sync service the daily tasks use; failures keep the choices for the next run. Non-members only count.

    At most `limit` items that need adding or removing are sent during the request (ORCID answers
    one item at a time); the others stay chosen and the nightly task sends them (`deferred`).
    Flushes; the caller commits.
    """
    if not settings.ORCID_MEMBER or client is None or review.orcid is None:
        counts = {kind: _choice_counts(changes) for kind, changes in recorded.changes.items()}
        return SubmitOutcome(
            settings.ORCID_MEMBER, counts.get("work", CategoryOutcome()), _sum(counts, AFFILIATION_TYPES)
        )
    now_changes, later = _within_limit(review, recorded.changes, limit)
    synced = sync_choices(settings, client, review.orcid, token, now_changes, now)
    works, affiliations = synced.works, synced.affiliations
    for kind, changes in later.items():
        counts = works if kind == "work" else affiliations
        counts.add(_choice_counts(changes))
    deferred = sum(len(c.previously_selected) + len(c.newly_selected) for c in later.values())
    return SubmitOutcome(True, works, affiliations, synced.needs_reconsent, deferred)


def _within_limit(
    review: Review, changes: dict[str, ChoiceChanges], limit: int
) -> tuple[dict[str, ChoiceChanges], dict[str, ChoiceChanges]]:
    """Split the recorded changes: what to send now (at most `limit` adds/removals), what to leave for later."""
    on_orcid = {w.local_id for w in review.works if w.on_orcid} | {
        a.local_id for a in review.affiliations if a.on_orcid
    }
    budget = limit
    now: dict[str, ChoiceChanges] = {}
    later: dict[str, ChoiceChanges] = {}
    for kind, change in changes.items():
        now[kind], later[kind] = ChoiceChanges(), ChoiceChanges()
        for name in ("previously_selected", "newly_selected", "previously_ignored", "newly_ignored"):
            for local_id in getattr(change, name):
                needs_call = (local_id in on_orcid) == name.endswith("ignored")
                if needs_call and budget <= 0:
                    getattr(later[kind], name).append(local_id)
                    continue
                budget -= needs_call
                getattr(now[kind], name).append(local_id)
    return now, {kind: c for kind, c in later.items() if _size(c)}


def _size(changes: ChoiceChanges) -> int:
    return sum(len(getattr(changes, n)) for n in ChoiceChanges.__dataclass_fields__)


def _choice_counts(changes: ChoiceChanges) -> CategoryOutcome:
    return CategoryOutcome(
        previously_selected=len(changes.previously_selected),
        newly_selected=len(changes.newly_selected),
        ignored=len(changes.previously_ignored) + len(changes.newly_ignored),
    )


def _sum(counts: dict[str, CategoryOutcome], kinds: Iterable[str]) -> CategoryOutcome:
    total = CategoryOutcome()
    for kind in kinds:
        if kind in counts:
            total.add(counts[kind])
    return total


@dataclass(frozen=True)
class _Choice:
    selected: datetime | None
    ignored: datetime | None


def _live_choices(orcid: str) -> dict[tuple[str, str], _Choice]:
    """(type, localSourceRecordID) → the live choice with its time, for every item type (one statement)."""
    rows = db.session.execute(
        select(UserSelection.type, UserSelection.localSourceRecordID, UserSelection.selected, UserSelection.ignored)
        .where(UserSelection.orcid == orcid, UserSelection.deleted.is_(None))
        .order_by(UserSelection.rowID)
    )
    return {(kind, local_id): _Choice(selected, ignored) for kind, local_id, selected, ignored in rows}


def _last_sync_runs() -> dict[str, datetime]:
    """When each nightly sync task last started a run over everybody (a run for one person tries no one else's)."""
    return last_complete_runs(SYNC_PROCESSES.values())


def _tried_since(choices: dict[tuple[str, str], _Choice], runs: dict[str, datetime]) -> set[str]:
    """Selected items that a nightly task run has had a chance to send since they were chosen."""
    tried = set()
    for (kind, local_id), choice in choices.items():
        last = runs.get(SYNC_PROCESSES.get(kind, ""))
        if choice.selected and last and choice.selected < last:
            tried.add(local_id)
    return tried


def _live_put_codes(orcid: str) -> set[tuple[str, str]]:
    """(type, localSourceRecordID) of every item live on this ORCID record (one statement)."""
    rows = db.session.execute(
        select(PutCode.type, PutCode.localSourceRecordID).where(PutCode.orcid == orcid, PutCode.deleted.is_(None))
    )
    return {(kind, local_id) for kind, local_id in rows}


def _state(
    key: tuple[str, str], found: _Choice | None, on_orcid: set[tuple[str, str]], failed: bool, member: bool
) -> State:
    """A selected item not on ORCID is `failed` when `failed` says an attempt since the choice failed."""
    choice = None if found is None else "selected" if found.selected else "ignored"
    if choice == "ignored":
        return "removing" if key in on_orcid else "ignored"
    if not member:
        return "selected" if choice == "selected" else "new"
    if key in on_orcid:
        return "on_orcid"
    if choice == "selected":
        return "failed" if failed else "waiting"
    return "new"
