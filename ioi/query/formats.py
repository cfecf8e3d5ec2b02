"""Serialising the query API's answers: rows as the PHP IOI shaped them, JSON, CSV, JSON lines, BibTeX."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence

from flask import Response, stream_with_context

from ioi.services.works import Person, Work

JOIN = "||"  # how the PHP IOI joined repeated values
WORK_COLUMNS = ("Type", "Title", "Authors", "Journal", "DOI", "Handle", "Publication Date", "Bibtex")
# The metadata fields those columns are made of: only these are read from the store.
WORK_FIELDS = (
    "dc.type",
    "dc.title",
    "dc.contributor.author",
    "dc.identifier.journal",
    "dc.identifier.doi",
    "dc.identifier.uri",
    "dc.date.issued",
    "dc.publisher",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
NO_STORE = {"Cache-Control": "no-store"}


def orcid_columns(abbrev: str) -> tuple[str, str, str]:
    return (f"{abbrev} ID", "Full Name", "ORCID")


def orcid_row(person: Person, abbrev: str) -> dict[str, str]:
    """`{ABBREV} ID`, `Full Name`, `ORCID` of one person."""
    return dict(zip(orcid_columns(abbrev), (person.person_id, person.display_name, person.orcid or ""), strict=True))


def work_row(work: Work, key_prefix: str) -> dict[str, str]:
    """The PHP IOI's columns for one work; repeated values joined with `||`."""
    return {
        "Type": JOIN.join(work.values("dc.type")),
        "Title": JOIN.join(work.values("dc.title")),
        "Authors": JOIN.join(work.authors),
        "Journal": JOIN.join(work.values("dc.identifier.journal")),
        "DOI": JOIN.join(work.values("dc.identifier.doi")),
        "Handle": JOIN.join(work.values("dc.identifier.uri")),
        "Publication Date": JOIN.join(work.values("dc.date.issued")),
        "Bibtex": bibtex(work, key_prefix),
    }


# --- BibTeX -------------------------------------------------------------------------------------

BIBTEX_TYPES = {
    "article": "article",
    "book": "book",
    "book chapter": "incollection",
    "conference paper": "inproceedings",
    "dissertation": "phdthesis",
    "thesis": "mastersthesis",
    "technical report": "techreport",
    "preprint": "unpublished",
}
BIBTEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "_": r"\_",
    "^": r"\^{}",
    "~": r"\~{}",
}
BIBTEX_SPECIAL = re.compile("|".join(re.escape(c) for c in BIBTEX_SPECIALS))
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def bibtex_escape(text: str) -> str:
    """Text safe inside a braced BibTeX field: LaTeX specials escaped, control characters as spaces."""
    return BIBTEX_SPECIAL.sub(lambda m: BIBTEX_SPECIALS[m.group()], CONTROL.sub(" ", text)).strip()


def _verbatim(text: str) -> str:
    """DOIs and URLs are read verbatim by biblatex: only braces, backslashes and controls must go."""
    return re.sub(r"[{}\\\s\x00-\x1f\x7f]", "", text)


def bibtex(work: Work, key_prefix: str) -> str:
    """A BibTeX entry for a work; the key is `{prefix}{handle}` with non-alphanumerics as `_`."""
    entry_type = BIBTEX_TYPES.get(work.type.strip().lower(), "misc")
    key = re.sub(r"[^A-Za-z0-9]", "_", f"{key_prefix}{work.handle}")
    fields: list[tuple[str, str]] = [
        ("title", bibtex_escape(work.title)),
        ("author", " and ".join(bibtex_escape(a) for a in work.authors)),
        ("journal" if entry_type in ("article", "unpublished", "misc") else "booktitle", bibtex_escape(work.journal)),
        ("year", work.year),
        ("doi", _verbatim(work.doi)),
        ("url", _verbatim(work.uri)),
    ]
    if entry_type.endswith("thesis"):
        fields.append(("school", bibtex_escape(work.first("dc.publisher"))))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@{entry_type}{{{key},\n{body}\n}}" if body else f"@{entry_type}{{{key}}}"


# --- CSV, JSON, JSON lines ----------------------------------------------------------------------


def safe_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula: risky first characters get a leading `'`."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_lines(columns: Sequence[str], rows: Iterable[dict[str, str]]) -> Iterator[str]:
    """The header line, then one CSV line per row (RFC 4180 quoting, CRLF), cells neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row[c]) for c in columns])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # no rows: the header alone
        yield buffer.getvalue()


def csv_text(columns: Sequence[str], rows: Iterable[dict[str, str]]) -> str:
    """A whole CSV document: the header, then the rows (RFC 4180 quoting, CRLF), cells neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([safe_cell(row[c]) for c in columns] for row in rows)
    return buffer.getvalue()


def csv_response(columns: Sequence[str], rows: Iterable[dict[str, str]], filename: str) -> Response:
    """A whole CSV document, UTF-8, offered as a download."""
    return Response(
        csv_text(columns, rows),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": _attachment(filename), **NO_STORE},
    )


def json_response(data: object) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), content_type="application/json", headers=NO_STORE)


def text_response(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """A plain-text message, as the PHP IOI answered errors."""
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8", headers=headers)


def stream_csv(columns: Sequence[str], rows: Iterator[dict[str, str]], filename: str) -> Response:
    """CSV streamed row by row while `rows` is read (the request context stays open meanwhile)."""
    return _stream(
        csv_lines(columns, rows),
        "text/csv; charset=utf-8",
        {"Content-Disposition": _attachment(filename), **NO_STORE},
    )


def stream_ndjson(rows: Iterator[dict[str, str]]) -> Response:
    """JSON lines (one object per line) streamed while `rows` is read."""
    lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return _stream(lines, "application/x-ndjson", NO_STORE)


def _stream(chunks: Iterator[str], content_type: str, headers: dict[str, str]) -> Response:
    encoded = (chunk.encode("utf-8") for chunk in chunks)
    return Response(stream_with_context(encoded), content_type=content_type, headers=headers, direct_passthrough=True)


def _attachment(filename: str) -> str:
    return f'attachment; filename="{re.sub(r"[^A-Za-z0-9._-]", "_", filename)}"'
