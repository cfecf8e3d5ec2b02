"""The one code path that writes to ORCID, used by the researcher page and by the sync tasks.

`OrcidWriter` pushes one work or affiliation for one person (POST when there is no live put-code,
PUT when the document differs from the last one sent, nothing when identical) or removes one
(DELETE), keeping `putCodes` rows: the live row of an item has `deleted` NULL; an update inserts a
new row and stamps the old one `deleted` + `replacedByRowID`. It heals what it meets:

- 401 invalid_token / 400 invalid_scope / 403 insufficient scope: the token is retired with the
  reason and the person needs re-consent (`people_needing_reconsent`); later items are not tried.
- 409 duplicate: the existing put-code is adopted (from the message, else by reading the record's
  works and matching this client's `self` external ids) and then PUT, so ORCID holds our content;
  unless another local item holds that put-code (two repository items with the same DOI): then
  the item is a `duplicate` and nothing is sent.
- 404 on PUT or DELETE: the put-code is retired; a selected item is POSTed anew.
- 5xx, timeouts (after the client's retries) and other refusals: the item fails; the researcher's
  choice is kept, so a later run tries again.

Services flush; callers commit once per item (the tasks) or per form (the page, or per item via
`commit=`), so a run killed mid-way leaves at worst a POST whose put-code was not stored, which the
rerun's 409 adopts: no duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from lxml import etree
from sqlalchemy import select, update

from ioi.clients.orcid import (
    OrcidClient,
    OrcidConflict,
    OrcidError,
    OrcidForbidden,
    OrcidNotFound,
    OrcidTokenInvalid,
)
from ioi.config import Settings
from ioi.extensions import db
from ioi.models import Mapping as MappingRow
from ioi.models import PutCode
from ioi.orcid_documents import (
    Affiliation,
    DocumentError,
    FieldMapping,
    Organization,
    build_affiliation,
    build_work,
    find_existing_put_code,
    mappings_from_rows,
    same_content,
    self_external_ids,
)
from ioi.services.metadata_store import flatten, read_records
from ioi.services.people import LocalPerson, Position, affiliation_id, affiliation_type, read_person, student_titles
from ioi.services.selections import ChoiceChanges
from ioi.services.tokens import TokenInfo, can_update, retire_tokens

WORK = "work"
AFFILIATION_TYPES = ("employment", "education")
WORK_PREFIX = "repository_"
AFFILIATION_PREFIX = "local_person_"
MAX_STEPS = 4  # POST → 409 adopt → PUT → 404 → POST: never loop beyond this
API_RESPONSE_MAX = 16000  # `apiResponse` is TEXT (64 KB); utf8mb4 needs up to 4 bytes a character
NOT_DUPLICATE_CONFLICTS = {9018, 9044, 9048}  # locked, deactivated, 10,000 works: nothing to adopt

Status = Literal[
    "added", "adopted", "updated", "unchanged", "duplicate", "deleted", "not_on_orcid", "failed", "token_invalid"
]


@dataclass(frozen=True)
class WorkMappings:
    """The `mappings` table as the work builder needs it."""

    fields: list[FieldMapping]
    types: dict[str, str]


@dataclass
class PushResult:
    """What happened to one item: `status`, the put-code on ORCID, and a message for reports."""

    status: Status
    put_code: str | None = None
    message: str = ""


# ------------------------------------------------------------------------------------ documents


def load_work_mappings() -> WorkMappings:
    """The dspace work field and work type mappings (one query)."""
    rows = db.session.scalars(select(MappingRow).where(MappingRow.source == "dspace")).all()
    fields, types = mappings_from_rows(rows)
    return WorkMappings(fields, types)


def work_local_id(handle: str) -> str:
    return f"{WORK_PREFIX}{handle}"


def handle_of(local_id: str) -> str | None:
    return local_id.removeprefix(WORK_PREFIX) if local_id.startswith(WORK_PREFIX) else None


def read_items(handles: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """handle → live top-level repository fields (one query)."""
    return {handle: flatten(record) for handle, record in read_records("dspace", list(handles)).items()}


def work_document(
    handle: str, item: Mapping[str, list[str]] | None = None, mappings: WorkMappings | None = None
) -> bytes:
    """The ORCID work XML (without put-code) of a harvested repository item, through the mappings
    table. `item` and `mappings` are read from the database when not given. Raises DocumentError
    when the item is unknown or cannot make a valid work."""
    if item is None:
        item = read_items([handle]).get(handle)
        if not item:
            raise DocumentError(f"no harvested metadata for {handle}")
    mappings = mappings or load_work_mappings()
    return build_work(item, mappings.fields, mappings.types, handle=handle)


def affiliation_kind(position: Position, students: set[str]) -> str:
    """`education` or `employment` for a position (Students-group titles are education)."""
    return affiliation_type(position.title, students)


def affiliation_document(
    person: LocalPerson, position: Position, organization: Organization, kind: str | None = None
) -> bytes:
    """The ORCID employment/education XML (without put-code) of one of the person's positions at
    the institution; department from the org, dates from the position. `kind` defaults to
    employment. Raises DocumentError when ORCID would refuse it (no role title, bad dates...)."""
    if not (position.title or "").strip():
        raise DocumentError(f"position {position.relation_id} of person {person.person_id} has no role title")
    affiliation = Affiliation(
        organization=organization,
        department_name=position.org.department_name if position.org else None,
        role_title=position.title,
        start_date=position.start_date or None,
        end_date=position.end_date or None,
    )
    return build_affiliation(kind or "employment", affiliation)  # type: ignore[arg-type]


def with_put_code(document: bytes, put_code: str) -> bytes:
    """The same document with the root `put-code` attribute set (for a PUT)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(document, parser)
    root.set("put-code", str(put_code))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# ------------------------------------------------------------------------------------ put-codes


def live_put_codes(orcid: str, item_type: str, local_id: str) -> list[PutCode]:
    """The live `putCodes` rows of an item, newest first (normally one)."""
    query = (
        select(PutCode)
        .where(
            PutCode.orcid == orcid,
            PutCode.type == item_type,
            PutCode.localSourceRecordID == local_id,
            PutCode.deleted.is_(None),
            PutCode.replacedByRowID.is_(None),
        )
        .order_by(PutCode.rowID.desc())
    )
    return list(db.session.scalars(query))


def live_put_code_ids(orcid: str | None = None, item_types: Iterable[str] = (WORK,)) -> set[tuple[str, str, str]]:
    """(orcid, type, localSourceRecordID) of every item with a live put-code (one query)."""
    query = select(PutCode.orcid, PutCode.type, PutCode.localSourceRecordID).where(
        PutCode.type.in_(list(item_types)), PutCode.deleted.is_(None), PutCode.replacedByRowID.is_(None)
    )
    if orcid is not None:
        query = query.where(PutCode.orcid == orcid)
    return {tuple(row) for row in db.session.execute(query)}  # type: ignore[misc]


@dataclass(frozen=True)
class LivePutCode:
    """A snapshot of a live `putCodes` row (the columns the writer reads)."""

    rowID: int
    putCode: str
    submittedData: str


def preload_put_codes(orcid: str, item_type: str) -> dict[str, list[LivePutCode]]:
    """localSourceRecordID → live put-code rows (newest first) of one person and type, in one query."""
    query = (
        select(PutCode.localSourceRecordID, PutCode.rowID, PutCode.putCode, PutCode.submittedData)
        .where(
            PutCode.orcid == orcid,
            PutCode.type == item_type,
            PutCode.deleted.is_(None),
            PutCode.replacedByRowID.is_(None),
        )
        .order_by(PutCode.rowID.desc())
    )
    found: dict[str, list[LivePutCode]] = {}
    for local_id, row_id, put_code, submitted in db.session.execute(query):
        found.setdefault(local_id, []).append(LivePutCode(row_id, put_code, submitted))
    return found


def _new_row(
    orcid: str, item_type: str, local_id: str, put_code: str, sent: bytes | str, response: str, now
) -> PutCode:
    row = PutCode(
        orcid=orcid,
        type=item_type,
        putCode=str(put_code),
        localSourceRecordID=local_id,
        submittedData=sent.decode("utf-8") if isinstance(sent, bytes) else sent,
        format="xml",
        apiResponse=response[:API_RESPONSE_MAX],
        added=now,
    )
    db.session.add(row)
    db.session.flush()
    return row


def _holder_of(orcid: str, item_type: str, put_code: str, local_id: str) -> str | None:
    """Another local item whose live put-code this is (two repository items with the same DOI), if any."""
    query = select(PutCode.localSourceRecordID).where(
        PutCode.orcid == orcid,
        PutCode.type == item_type,
        PutCode.putCode == str(put_code),
        PutCode.localSourceRecordID != local_id,
        PutCode.deleted.is_(None),
        PutCode.replacedByRowID.is_(None),
    )
    return db.session.scalars(query.limit(1)).first()


def _retire(rows: Iterable[PutCode | LivePutCode], now: datetime, replaced_by: int | None = None) -> None:
    ids = [row.rowID for row in rows]
    if ids:
        values: dict = {"deleted": now}
        if replaced_by is not None:
            values["replacedByRowID"] = replaced_by
        db.session.execute(update(PutCode).where(PutCode.rowID.in_(ids)).values(**values))
        db.session.expire_all()


# ------------------------------------------------------------------------------------- writing


class OrcidWriter:
    """Writes one person's items to ORCID with one token; `token_invalid` once ORCID refused it.

    In a dry run nothing is sent and nothing is written: the results say what would happen.
    """

    def __init__(
        self,
        settings: Settings,
        client: OrcidClient,
        orcid: str,
        token: TokenInfo,
        now: datetime,
        *,
        dry_run: bool = False,
    ):
        self.settings = settings
        self.client = client
        self.orcid = orcid
        self.token = token
        self.now = now
        self.dry_run = dry_run
        self.token_invalid = False
        self._preloaded: dict[str, dict[str, list[LivePutCode]]] = {}
        self._written: set[tuple[str, str]] = set()

    def preload(self, *item_types: str) -> None:
        """Read this person's live put-codes of those types at once: a task's per-item lookups then
        cost no query. Items written by this writer are looked up afresh."""
        for item_type in item_types:
            self._preloaded[item_type] = preload_put_codes(self.orcid, item_type)

    def _live(self, item_type: str, local_id: str) -> list[PutCode] | list[LivePutCode]:
        preloaded = self._preloaded.get(item_type)
        if preloaded is None or (item_type, local_id) in self._written:
            return live_put_codes(self.orcid, item_type, local_id)
        return preloaded.get(local_id, [])

    def push(self, item_type: str, local_id: str, document: bytes) -> PushResult:
        """Make ORCID hold `document` (built without put-code) for this item: POST, PUT or nothing."""
        if self.token_invalid:
            return PushResult("token_invalid", message="the token was refused earlier in this run")
        rows = self._live(item_type, local_id)
        current = rows[0] if rows else None
        if current is not None and same_content(current.submittedData, document):
            return PushResult("unchanged", current.putCode)
        if self.dry_run:
            return PushResult("updated" if current else "added", current.putCode if current else None)
        self._written.add((item_type, local_id))
        section = item_type
        adopted = False
        for _ in range(MAX_STEPS):
            if current is None:
                try:
                    put_code = self.client.add(self.orcid, self.token.access_token, section, document)
                except OrcidConflict as exc:
                    found = self._existing_put_code(exc, document)
                    if found is None:
                        return PushResult("failed", message=f"409 without an adoptable put-code: {exc}")
                    other = _holder_of(self.orcid, item_type, found, local_id)
                    if other is not None:
                        message = f"same identifiers as {other}, already on ORCID as put-code {found}"
                        return PushResult("duplicate", found, message)
                    current = _new_row(self.orcid, item_type, local_id, found, "", f"409 adopted: {exc}", self.now)
                    adopted = True
                    continue
                except OrcidError as exc:
                    return self._failure(exc)
                _new_row(self.orcid, item_type, local_id, put_code, document, f"201 put-code {put_code}", self.now)
                return PushResult("added", put_code)
            sent = with_put_code(document, current.putCode)
            try:
                body = self.client.update(self.orcid, self.token.access_token, section, current.putCode, sent)
            except OrcidNotFound:
                _retire(live_put_codes(self.orcid, item_type, local_id), self.now)
                current = None
                continue
            except OrcidError as exc:
                return self._failure(exc, current.putCode)
            new = _new_row(
                self.orcid, item_type, local_id, current.putCode, sent, body.decode("utf-8", "replace"), self.now
            )
            _retire(
                [r for r in live_put_codes(self.orcid, item_type, local_id) if r.rowID != new.rowID],
                self.now,
                new.rowID,
            )
            return PushResult("adopted" if adopted else "updated", current.putCode)
        return PushResult("failed", message="ORCID kept refusing the put-codes it named")

    def remove(self, item_type: str, local_id: str) -> PushResult:
        """DELETE the item from ORCID if IOI put it there, and retire its put-code."""
        if self.token_invalid:
            return PushResult("token_invalid", message="the token was refused earlier in this run")
        rows = self._live(item_type, local_id)
        if not rows:
            return PushResult("not_on_orcid")
        if self.dry_run:
            return PushResult("deleted", rows[0].putCode)
        self._written.add((item_type, local_id))
        for put_code in dict.fromkeys(row.putCode for row in rows):
            try:
                self.client.delete(self.orcid, self.token.access_token, item_type, put_code)
            except OrcidNotFound:
                pass
            except OrcidError as exc:
                return self._failure(exc, put_code)
        _retire(rows, self.now)
        return PushResult("deleted", rows[0].putCode)

    def _existing_put_code(self, exc: OrcidConflict, document: bytes) -> str | None:
        """The put-code a 409 duplicate refers to: from the message, else from the record's works."""
        if exc.put_code:
            return exc.put_code
        if exc.error_code in NOT_DUPLICATE_CONFLICTS:
            return None
        ids = self_external_ids(document)
        if not ids:
            return None
        try:
            summaries = self.client.read_works(self.orcid, self.token.access_token)
        except OrcidError:
            return None
        return find_existing_put_code(summaries, ids, self.client.client_id or None)

    def _failure(self, exc: OrcidError, put_code: str | None = None) -> PushResult:
        reason = _token_problem(exc)
        if reason is None:
            return PushResult("failed", put_code, str(exc))
        retire_tokens(self.settings, self.orcid, reason, self.now, access_token=self.token.access_token)
        self.token_invalid = True
        return PushResult("token_invalid", put_code, f"ORCID refused the token ({reason}); re-consent needed")


def _token_problem(exc: OrcidError) -> str | None:
    """The deletedReason for a token ORCID refused, or None when the failure is not the token's."""
    if isinstance(exc, OrcidTokenInvalid):
        if exc.oauth_error == "invalid_scope" or exc.status == 400:
            return "invalid_scope"
        return "invalid_token"
    if isinstance(exc, OrcidForbidden) and exc.error_code == 9038:
        return "insufficient_scope"
    return None


# --------------------------------------------------------------------------- the researcher page


@dataclass
class CategoryOutcome:
    """Counts for one kind of item on the researcher page (§4.7), with the ids that failed."""

    previously_selected: int = 0
    newly_selected: int = 0
    already_on_orcid: int = 0
    added_to_orcid: int = 0
    updated_on_orcid: int = 0
    failed: int = 0
    ignored: int = 0
    removed_from_orcid: int = 0
    failed_ids: list[str] = field(default_factory=list)

    def add(self, other: CategoryOutcome) -> None:
        for name in self.__dataclass_fields__:
            if name == "failed_ids":
                self.failed_ids.extend(other.failed_ids)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class SyncOutcome:
    """What a submit did, by item type (`work`, `employment`, `education`)."""

    by_type: dict[str, CategoryOutcome] = field(default_factory=dict)
    needs_reconsent: bool = False
    messages: list[str] = field(default_factory=list)

    @property
    def works(self) -> CategoryOutcome:
        return self.by_type.get(WORK, CategoryOutcome())

    @property
    def affiliations(self) -> CategoryOutcome:
        total = CategoryOutcome()
        for kind in AFFILIATION_TYPES:
            if kind in self.by_type:
                total.add(self.by_type[kind])
        return total


def parse_affiliation_id(local_id: str) -> tuple[str, str] | None:
    """(personID, personOrgRelation id) of `local_person_{personID}_{relation}`."""
    if not local_id.startswith(AFFILIATION_PREFIX):
        return None
    person_id, _, relation = local_id.removeprefix(AFFILIATION_PREFIX).partition("_")
    return (person_id, relation) if person_id and relation else None


def sync_choices(
    settings: Settings,
    client: OrcidClient,
    orcid: str,
    token: TokenInfo | None,
    changes_by_type: Mapping[str, ChoiceChanges],
    now: datetime,
    *,
    commit: Callable[[], None] | None = None,
) -> SyncOutcome:
    """Push the selected items of a submitted form to ORCID and delete the deselected ones.

    `changes_by_type` is what `record_choices` returned per item type. Selected items are POSTed
    or PUT (nothing when ORCID already holds the same document); ignored items on ORCID are
    deleted. `commit` is called after each item (default: the caller commits once). A refused
    token stops the writing and sets `needs_reconsent`; failures leave the choices as recorded.
    """
    outcome = SyncOutcome()
    writer = OrcidWriter(settings, client, orcid, token, now) if token else None
    documents = _documents_for(settings, changes_by_type)
    for item_type, changes in changes_by_type.items():
        counts = outcome.by_type.setdefault(item_type, CategoryOutcome())
        counts.previously_selected += len(changes.previously_selected)
        counts.newly_selected += len(changes.newly_selected)
        ignored = [*changes.previously_ignored, *changes.newly_ignored]
        counts.ignored += len(ignored)
        allowed = writer is not None and token is not None and can_update(token.scope, item_type)
        for local_id in [*changes.previously_selected, *changes.newly_selected]:
            document = documents.get((item_type, local_id))
            if not allowed or writer is None or writer.token_invalid or isinstance(document, str):
                counts.failed += 1
                counts.failed_ids.append(local_id)
                if isinstance(document, str):
                    outcome.messages.append(f"{local_id}: {document}")
                continue
            result = writer.push(item_type, local_id, document)  # type: ignore[arg-type]
            _count_push(counts, local_id, result, outcome)
            if commit:
                commit()
        for local_id in ignored:
            if not allowed or writer is None or writer.token_invalid:
                continue
            result = writer.remove(item_type, local_id)
            if result.status == "deleted":
                counts.removed_from_orcid += 1
            elif result.status in ("failed", "token_invalid"):
                counts.failed += 1
                counts.failed_ids.append(local_id)
                outcome.messages.append(f"{local_id}: {result.message}")
            if commit:
                commit()
    outcome.needs_reconsent = writer is not None and writer.token_invalid
    return outcome


def _count_push(counts: CategoryOutcome, local_id: str, result: PushResult, outcome: SyncOutcome) -> None:
    if result.status == "added":
        counts.added_to_orcid += 1
    elif result.status in ("unchanged", "adopted", "duplicate"):
        counts.already_on_orcid += 1
    elif result.status == "updated":
        counts.updated_on_orcid += 1
    else:
        counts.failed += 1
        counts.failed_ids.append(local_id)
        outcome.messages.append(f"{local_id}: {result.message}")


def _documents_for(
    settings: Settings, changes_by_type: Mapping[str, ChoiceChanges]
) -> dict[tuple[str, str], bytes | str]:
    """(type, localSourceRecordID) → document of every selected item, or why it cannot be built."""
    documents: dict[tuple[str, str], bytes | str] = {}
    wanted = {
        (item_type, local_id)
        for item_type, changes in changes_by_type.items()
        for local_id in [*changes.previously_selected, *changes.newly_selected]
    }
    handles = {handle_of(local_id) for item_type, local_id in wanted if item_type == WORK} - {None}
    items = read_items(handles) if handles else {}  # type: ignore[arg-type]
    mappings = load_work_mappings() if handles else None
    people: dict[str, LocalPerson | None] = {}
    organization = Organization.from_settings(settings)
    for item_type, local_id in wanted:
        try:
            if item_type == WORK:
                handle = handle_of(local_id)
                if handle is None or handle not in items:
                    raise DocumentError("no harvested metadata for this work")
                documents[(item_type, local_id)] = work_document(handle, items[handle], mappings)
                continue
            parsed = parse_affiliation_id(local_id)
            if parsed is None:
                raise DocumentError("not an affiliation id")
            person_id, relation = parsed
            if person_id not in people:
                people[person_id] = read_person(person_id)
            person = people[person_id]
            position = next((p for p in person.positions if p.relation_id == relation), None) if person else None
            if person is None or position is None:
                raise DocumentError("no such position")
            documents[(item_type, local_id)] = affiliation_document(person, position, organization, item_type)
        except DocumentError as exc:
            documents[(item_type, local_id)] = str(exc)
    return documents


def affiliation_items(person: LocalPerson, students: set[str] | None = None) -> list[tuple[str, str, Position]]:
    """(type, localSourceRecordID, position) of each of a person's positions."""
    students = student_titles() if students is None else students
    return [
        (affiliation_kind(p, students), affiliation_id(person.person_id, p.relation_id), p) for p in person.positions
    ]
