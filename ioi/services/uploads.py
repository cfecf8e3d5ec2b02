"""CSV uploads of HR and organisation data into the metadata store (source `local`).

Four kinds, each with a fixed header row (checked ignoring case and surrounding spaces; order and
count must match): Organisation Hierarchy, Organisation Data, Persons Data and Person Organisation
Relations. Rules:

- Text is UTF-8 (with or without BOM) or else Windows-1252; comma, semicolon or tab separated
  (taken from the header row).
- Dates: YYYY-MM-DD (a time after it, as Excel writes, is ignored), YYYY/MM/DD, YYYYMMDD,
  DD.MM.YYYY, and day/month/year with slashes. Whether slashed dates are DD/MM/YYYY or MM/DD/YYYY
  is decided for the whole file by its unambiguous dates (a day above 12); a file that shows both
  orders is refused, and one that shows neither has its ambiguous dates (like 03/04/2020)
  reported: write them as YYYY-MM-DD.
- A file is applied all-or-nothing, in one transaction: any bad row (reported with its line
  number and reason) and nothing changes. A row repeated word for word is skipped.
- A person's name is never overwritten once set (admins may have fixed it); an upload never
  removes a person's or organisation's other data.
- Relations need their person uploaded first; they are matched by person + start date, and for
  an existing relation only the organisation id and the end date are updated (a missing job title
  is filled in).
- The summary (new / updated / deleted / unchanged / skipped) is saved as a task report.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from ioi.config import EMAIL
from ioi.extensions import db
from ioi.services.metadata_store import Value, read_records, write_records
from ioi.services.reports import TaskReport, save_report

SOURCE = "local"
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
CHUNK = 1000
MAX_REPORTED_ERRORS = 200
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$")
RELATION = "local.personOrgRelation.id"


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    headers: tuple[str, ...]
    process: str
    date_columns: tuple[str, ...] = ()


KINDS = {
    k.key: k
    for k in (
        Kind("orgHierarchy", "Organisation Hierarchy", ("Parent_Organisation_ID", "Child_Organisation_ID"),
             "uploadOrganisationHierarchy"),
        Kind("orgData", "Organisation Data", ("Organisation_ID", "Name", "Type", "Start_Date", "End_Date"),
             "uploadOrganisationData", ("Start_Date", "End_Date")),
        Kind("persons", "Persons Data",
             ("PERSON_ID", "LAST_NAME", "FIRST_NAME", "MIDDLE_NAME", "LOCAL_PERSON_ID", "EMAIL"), "uploadPersonsData"),
        Kind("relations", "Person Organisation Relations",
             ("PERSON_ID", "ORG_ID", "JOB_TITLE", "START_DATE", "END_DATE"), "uploadPersonOrgRelations",
             ("START_DATE", "END_DATE")),
    )
}  # fmt: skip


class UploadError(ValueError):
    """The file as a whole cannot be read (size, encoding, header); nothing was changed."""


@dataclass
class RowError:
    line: int
    message: str


@dataclass
class UploadResult:
    kind: Kind
    filename: str
    rows: int = 0
    counts: Counter = field(default_factory=Counter)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def applied(self) -> bool:
        return self.error_count == 0

    def error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(line, message))

    def summary(self) -> dict[str, int]:
        return {k: self.counts[k] for k in ("new", "updated", "deleted", "unchanged", "skipped")}


# --- reading the file -------------------------------------------------------------------------


def decode(data: bytes) -> tuple[str, str]:
    """(codec, name) of the file: UTF-8 with or without BOM, else Windows-1252. Raises UploadError.

    Checked in slices, so no decoded copy of the whole file is kept.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"The file is {len(data) / 1048576:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 1048576} MB. "
            "Split it into smaller files."
        )
    if not data.strip():
        raise UploadError("The file is empty.")
    if data[:4] == b"PK\x03\x04" or b"\x00" in data[:4096]:
        raise UploadError("This is not a CSV text file (an Excel workbook?). Save it as CSV and upload that.")
    for codec, name in (("utf-8-sig", "UTF-8"), ("cp1252", "Windows-1252")):
        decoder = codecs.getincrementaldecoder(codec)()
        try:
            for offset in range(0, len(data), 1 << 20):
                decoder.decode(data[offset : offset + (1 << 20)])
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            position = offset + exc.start
            continue
        return codec, name
    raise UploadError(
        f"The file is neither UTF-8 nor Windows-1252 text (byte 0x{data[position]:02x} at position {position})."
    )


def _dialect(first_line: str, expected: int) -> str:
    for delimiter in (",", ";", "\t"):
        if len(next(csv.reader([first_line], delimiter=delimiter))) == expected:
            return delimiter
    return ","


def check_header(kind: Kind, header: list[str]) -> None:
    """Raise UploadError unless the header names the kind's columns, in order, ignoring case."""
    got = [h.strip().lower() for h in header]
    if got != [h.lower() for h in kind.headers]:
        raise UploadError(
            f"The header row does not match {kind.label}: expected {', '.join(kind.headers)} "
            f"({len(kind.headers)} columns); found {', '.join(h.strip() for h in header) or 'nothing'} "
            f"({len(header)} columns)."
        )


def _rows(kind: Kind, data: bytes, codec: str) -> Iterator[tuple[int, dict[str, str]] | tuple[int, str]]:
    """(line, row) for each data row, or (line, error text) for a row of the wrong width; streamed."""
    first_line = data.split(b"\n", 1)[0].decode(codec).rstrip("\r")
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=codec, newline="")
    reader = csv.reader(stream, delimiter=_dialect(first_line, len(kind.headers)))
    try:
        header = next(reader)
    except StopIteration:
        raise UploadError("The file is empty.") from None
    check_header(kind, header)
    line = reader.line_num
    try:
        for values in reader:
            start, line = line + 1, reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(kind.headers):
                yield start, f"expected {len(kind.headers)} values, found {len(values)}"
                continue
            yield start, {name: value.strip() for name, value in zip(kind.headers, values, strict=True)}
    except csv.Error as exc:
        yield line + 1, f"unreadable CSV ({exc}); check the quotes"


# --- dates ------------------------------------------------------------------------------------

ISO = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?: \d{1,2}:\d{2}(?::\d{2})?)?$")
SLASHED = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?: \d{1,2}:\d{2}(?::\d{2})?)?$")


def slash_order_evidence(value: str) -> str | None:
    """'dmy' or 'mdy' when a slashed date can only be read one way, else None."""
    match = SLASHED.match(value.strip())
    if not match:
        return None
    first, second = int(match[1]), int(match[2])
    if first > 12 >= second:
        return "dmy"
    if second > 12 >= first:
        return "mdy"
    return None


def parse_date(value: str, slash_order: str | None = None) -> str | None:
    """The ISO date (YYYY-MM-DD) of a cell, None when empty; raises ValueError with the reason."""
    text = value.strip()
    if not text:
        return None
    if match := ISO.match(text) or COMPACT.match(text):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    elif match := DOTTED.match(text):
        day, month, year = int(match[1]), int(match[2]), int(match[3])
    elif match := SLASHED.match(text):
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        order = slash_order_evidence(text) or slash_order
        if order is None and first != second:
            raise ValueError(
                f"ambiguous date {text!r}: DD/MM/YYYY or MM/DD/YYYY? Nothing in the file tells; use YYYY-MM-DD"
            )
        day, month = (first, second) if order in ("dmy", None) else (second, first)
    else:
        raise ValueError(f"unrecognised date {text!r}; use YYYY-MM-DD")
    try:
        parsed = date(year, month, day)
    except ValueError:
        raise ValueError(f"no such date {text!r}") from None
    if not 1900 <= parsed.year <= 2200:
        raise ValueError(f"implausible date {text!r}")
    return parsed.isoformat()


def _slash_order(kind: Kind, data: bytes, codec: str) -> str | None:
    """The file's slashed-date order from its unambiguous dates; UploadError if it shows both."""
    if not kind.date_columns:
        return None
    seen: dict[str, int] = {}
    for line, row in _rows(kind, data, codec):
        if isinstance(row, str):
            continue
        for column in kind.date_columns:
            order = slash_order_evidence(row[column])
            if order and order not in seen:
                seen[order] = line
    if len(seen) == 2:
        raise UploadError(
            f"The file writes dates both as DD/MM/YYYY (line {seen['dmy']}) and as MM/DD/YYYY "
            f"(line {seen['mdy']}); use one format, preferably YYYY-MM-DD."
        )
    return next(iter(seen), None)


# --- the four kinds ---------------------------------------------------------------------------


def _first(record: dict, name: str) -> str | None:
    values = record.get(name)
    if not values:
        return None
    return values[0].value if isinstance(values[0], Value) else str(values[0])


def _set(record: dict, name: str, value: str | None) -> None:
    """Set a single-valued field, or remove it when the value is empty."""
    if value:
        record[name] = [value]
    else:
        record.pop(name, None)


def _check_id(value: str, column: str) -> str:
    if not ID_PATTERN.match(value):
        raise ValueError(f"{column} {value!r} is not an identifier" if value else f"{column} is empty")
    return value


def _check_dates(row: dict[str, str], start_col: str, end_col: str, order: str | None) -> tuple[str | None, str | None]:
    start = parse_date(row[start_col], order)
    end = parse_date(row[end_col], order)
    if start and end and end < start:
        raise ValueError(f"{end_col} {end} is before {start_col} {start}")
    return start, end


class _Applier:
    """Validates rows and writes them chunk by chunk; one per file."""

    def __init__(self, kind: Kind, result: UploadResult, order: str | None, now: datetime):
        self.kind, self.result, self.order, self.now = kind, result, order, now
        self.seen: dict[str, tuple[int, bytes]] = {}

    def duplicate(self, key: str, line: int, row: dict[str, str]) -> bool:
        """True (and skipped) for a word-for-word repeat; an error for a conflicting one."""
        # A digest, not the row, is remembered: memory stays small for large files.
        values = hashlib.blake2b("\x1f".join(row.values()).encode(), digest_size=16).digest()
        if key in self.seen:
            first_line, first_values = self.seen[key]
            if first_values == values:
                self.result.counts["skipped"] += 1
            else:
                self.result.error(line, f"{key} is already on line {first_line} with other values")
            return True
        self.seen[key] = (line, values)
        return False

    def apply(self, chunk: list[tuple[int, dict[str, str]]]) -> None:
        raise NotImplementedError

    def write(self, records: dict[str, dict]) -> dict:
        if self.result.error_count:  # nothing will be kept: only validate
            return {}
        results = write_records(SOURCE, records, self.now)
        for outcome in results.values():
            self.result.counts["deleted"] += sum(1 for s in outcome.fields.values() if s == "deleted")
        return results

    def count_records(self, results: dict) -> None:
        for outcome in results.values():
            self.result.counts[outcome.status] += 1


class _Hierarchy(_Applier):
    def apply(self, chunk):
        rows = {}
        for line, row in chunk:
            try:
                parent = _check_id(row["Parent_Organisation_ID"], "Parent_Organisation_ID")
                child = _check_id(row["Child_Organisation_ID"], "Child_Organisation_ID")
                if parent == child:
                    raise ValueError("an organisation cannot be its own parent")
            except ValueError as exc:
                self.result.error(line, str(exc))
                continue
            if not self.duplicate(f"organisation {child}", line, {"child": child, "parent": parent}):
                rows[f"org_{child}"] = (child, parent)
        existing = read_records(SOURCE, rows)
        records = {}
        for key, (child, parent) in rows.items():
            record = dict(existing.get(key, {}))
            record["local.org.id"] = [child]
            record["local.org.parent"] = [parent]
            records[key] = record
        self.count_records(self.write(records))


class _OrgData(_Applier):
    def apply(self, chunk):
        rows = {}
        for line, row in chunk:
            try:
                org_id = _check_id(row["Organisation_ID"], "Organisation_ID")
                if not row["Name"]:
                    raise ValueError("Name is empty")
                start, end = _check_dates(row, "Start_Date", "End_Date", self.order)
            except ValueError as exc:
                self.result.error(line, str(exc))
                continue
            if not self.duplicate(f"organisation {org_id}", line, row):
                rows[f"org_{org_id}"] = (org_id, row["Name"], row["Type"], start, end)
        existing = read_records(SOURCE, rows)
        records = {}
        for key, (org_id, name, org_type, start, end) in rows.items():
            record = dict(existing.get(key, {}))
            record["local.org.id"] = [org_id]
            record["local.org.name"] = [name]
            _set(record, "local.org.type", org_type)
            _set(record, "local.date.start", start)
            _set(record, "local.date.end", end)
            records[key] = record
        self.count_records(self.write(records))


def person_name(last: str, first: str, middle: str) -> str:
    """'Surname, Given Middle' (the surname alone when there is no given name)."""
    given = " ".join(part for part in (first, middle) if part)
    return f"{last}, {given}" if given else last


class _Persons(_Applier):
    def __init__(self, *args):
        super().__init__(*args)
        self.names_kept = 0

    def apply(self, chunk):
        rows = {}
        for line, row in chunk:
            try:
                person_id = _check_id(row["PERSON_ID"], "PERSON_ID")
                if not row["LAST_NAME"]:
                    raise ValueError("LAST_NAME is empty")
                email = row["EMAIL"].lower()
                if email and not EMAIL.match(email):
                    raise ValueError(f"EMAIL {row['EMAIL']!r} is not an email address")
                number = row["LOCAL_PERSON_ID"]
                if number and not number.isdigit():
                    raise ValueError(f"LOCAL_PERSON_ID {number!r} is not a number")
            except ValueError as exc:
                self.result.error(line, str(exc))
                continue
            if not self.duplicate(f"PERSON_ID {person_id}", line, row):
                name = person_name(row["LAST_NAME"], row["FIRST_NAME"], row["MIDDLE_NAME"])
                rows[f"person_{person_id}"] = (person_id, name, email, number)
        existing = read_records(SOURCE, rows)
        records = {}
        for key, (person_id, name, email, number) in rows.items():
            record = dict(existing.get(key, {}))
            current = _first(record, "local.person.name")
            if current and current != name:
                self.names_kept += 1  # set before (perhaps fixed by an admin): never overwritten
            elif not current:
                record["local.person.name"] = [name]
            record["local.person.id"] = [person_id]
            if email:
                record["local.person.email"] = [email]
            if number:
                # Six digits is a staff (personnel) number; longer ones are student numbers.
                field_name = "local.person.personnelNumber" if len(number) <= 6 else "local.person.studentNumber"
                record[field_name] = [number]
            records[key] = record
        self.count_records(self.write(records))


class _Relations(_Applier):
    def apply(self, chunk):
        rows = []
        for line, row in chunk:
            try:
                person_id = _check_id(row["PERSON_ID"], "PERSON_ID")
                org_id = _check_id(row["ORG_ID"], "ORG_ID")
                start, end = _check_dates(row, "START_DATE", "END_DATE", self.order)
                if not start:
                    raise ValueError("START_DATE is empty (a relation is identified by person and start date)")
            except ValueError as exc:
                self.result.error(line, str(exc))
                continue
            if not self.duplicate(f"the relation of person {person_id} starting {start}", line, row):
                rows.append((line, person_id, org_id, row["JOB_TITLE"], start, end))
        existing = read_records(SOURCE, {f"person_{r[1]}" for r in rows})
        records: dict[str, dict] = {}
        for line, person_id, org_id, title, start, end in rows:
            key = f"person_{person_id}"
            if key not in records:
                if not _first(existing.get(key, {}), "local.person.id"):
                    self.result.error(line, f"person {person_id} is not known: upload Persons Data first")
                    continue
                records[key] = {**existing[key], RELATION: list(existing[key].get(RELATION, []))}
            status, removed = self._merge(records[key][RELATION], person_id, org_id, title, start, end)
            self.result.counts[status] += 1
            self.result.counts["deleted"] += removed
        self.write(records)

    @staticmethod
    def _merge(
        relations: list[Value], person_id: str, org_id: str, title: str, start: str, end: str | None
    ) -> tuple[str, int]:
        """Add or update the relation starting on `start`: (new|updated|unchanged, values removed)."""
        for index, relation in enumerate(relations):
            if (_first(relation.children, "local.date.start") or relation.value.rsplit("_", 1)[-1]) != start:
                continue
            children = dict(relation.children)
            before = (_first(children, "local.org.id"), _first(children, "local.date.end"))
            _set(children, "local.org.id", org_id)
            _set(children, "local.date.end", end)
            if title and not _first(children, "local.person.title"):
                children["local.person.title"] = [title]
            relations[index] = Value(relation.value, children)
            changed = before != (org_id, end) or children.keys() != relation.children.keys()
            return ("updated" if changed else "unchanged"), int(bool(before[1]) and not end)
        children: dict[str, list[Value | str]] = {"local.org.id": [org_id], "local.date.start": [start]}
        if title:
            children["local.person.title"] = [title]
        if end:
            children["local.date.end"] = [end]
        relations.append(Value(f"{person_id}_{org_id}_{start}", children))
        return "new", 0


APPLIERS = {"orgHierarchy": _Hierarchy, "orgData": _OrgData, "persons": _Persons, "relations": _Relations}


def import_file(kind_key: str, filename: str, data: bytes, now: datetime) -> UploadResult:
    """Check and apply one uploaded file in one transaction; commits on success, rolls back otherwise.

    Raises UploadError for a file that cannot be read at all; row problems are in the result.
    On success the summary is saved as a task report (process `upload...`).
    """
    kind = KINDS.get(kind_key)
    if kind is None:
        raise UploadError("Choose what kind of file this is.")
    codec, encoding = decode(data)
    order = _slash_order(kind, data, codec)
    result = UploadResult(kind, filename)
    applier = APPLIERS[kind_key](kind, result, order, now)
    chunk: list[tuple[int, dict[str, str]]] = []
    try:
        for line, row in _rows(kind, data, codec):
            if isinstance(row, str):
                result.error(line, row)
                continue
            result.rows += 1
            chunk.append((line, row))
            if len(chunk) >= CHUNK:
                applier.apply(chunk)
                chunk = []
        if chunk:
            applier.apply(chunk)
        if result.rows == 0 and not result.error_count:
            raise UploadError("The file has a header row but no data rows.")
    except BaseException:
        db.session.rollback()
        raise
    if not result.applied:
        db.session.rollback()
        return result
    if isinstance(applier, _Persons) and applier.names_kept:
        result.notes.append(f"{applier.names_kept} names already set were kept (names are never overwritten).")
    if order:
        result.notes.append(f"Slashed dates read as {'DD/MM/YYYY' if order == 'dmy' else 'MM/DD/YYYY'}.")
    report = TaskReport(kind.process)
    report.log(f"{kind.label} upload: {filename} ({encoding}, {result.rows} rows)")
    for note in result.notes:
        report.log(note)
    for name, n in result.summary().items():
        report.count(name, n)
    save_report(report, now)
    db.session.commit()
    return result
