"""The admin dashboard's figures: uptake of ORCID iDs, permissions, works and affiliations.

Each figure is a small table (row labels × series) computed with a few aggregate queries; the page
draws it as a chart, shows it as an HTML table and offers it as CSV.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from ioi.extensions import db
from ioi.models import Metadata, Orcid, PutCode, Token, UserSelection
from ioi.services.groups import OTHERS, group_labels, group_of, load_groups, person_titles

AFFILIATION_TYPES = ("employment", "education")
FACULTY = "Faculty"
# Scope names as the admins know them.
SCOPE_NAMES = {
    "/authenticate": "authenticate",
    "/read-limited": "read limited",
    "/activities/update": "update activities",
    "/person/update": "update person",
}


@dataclass
class Figure:
    """One dashboard figure: `rows` labels, and per series one number per row."""

    key: str
    title: str
    chart: str  # pie | bar | hbar (horizontal bars) | stacked
    row_heading: str
    rows: list[str]
    series: dict[str, list[int]]
    note: str = ""

    @property
    def total(self) -> int:
        return sum(sum(values) for values in self.series.values())

    def table(self) -> list[list[str | int]]:
        """Header row then one row per label."""
        header: list[str | int] = [self.row_heading, *self.series]
        body = [[row, *(values[i] for values in self.series.values())] for i, row in enumerate(self.rows)]
        return [header, *body]

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerows(self.table())
        return out.getvalue()

    def chart_data(self) -> dict:
        """What the chart script needs (colours are added by the view); series keep their order."""
        series = [{"name": name, "values": values} for name, values in self.series.items()]
        return {"type": self.chart, "labels": self.rows, "series": series, "title": self.title}


@dataclass
class Totals:
    people: int
    active_people: int
    orcids: int
    live_tokens: int


def _orcid_groups(now: datetime) -> tuple[list[tuple[str, str, datetime]], Totals, list[str]]:
    """(orcid, group, added) for every live ORCID iD, the headline totals, and the group labels."""
    groups = load_groups()
    titles = person_titles(now.date())
    rows = db.session.execute(select(Orcid.orcid, Orcid.localPersonID, Orcid.added).where(Orcid.deleted.is_(None)))
    result = []
    for orcid, person_id, added in rows:
        person = titles.get(f"person_{person_id}")
        label = group_of(person.active or person.all, groups) if person else OTHERS
        result.append((orcid, label, added))
    live_tokens = db.session.execute(
        select(func.count(func.distinct(Token.orcid))).where(Token.deleted.is_(None), Token.expiration > now)
    ).scalar_one()
    people = db.session.execute(
        select(func.count(func.distinct(Metadata.idInSource))).where(
            Metadata.source == "local", Metadata.field == "local.person.id", Metadata.deleted.is_(None)
        )
    ).scalar_one()
    totals = Totals(
        people=people,
        active_people=sum(1 for t in titles.values() if t.is_active),
        orcids=len(result),
        live_tokens=live_tokens,
    )
    return result, totals, group_labels(groups)


def scope_label(scope: str) -> str:
    """'/read-limited /activities/update /authenticate' → 'authenticate + read limited + update activities'."""
    parts = sorted({SCOPE_NAMES.get(s, s) for s in scope.replace(",", " ").split()})
    return " + ".join(parts) or "(none)"


def _live_scopes(now: datetime) -> dict[str, str]:
    """ORCID iD → the scope of its newest live, unexpired token."""
    rows = db.session.execute(
        select(Token.orcid, Token.scope).where(Token.deleted.is_(None), Token.expiration > now).order_by(Token.created)
    )
    return {orcid: scope for orcid, scope in rows}


def _permission_level(scope: str | None) -> str:
    if scope is None:
        return "no permission granted"
    parts = set(scope.split())
    read, update = "/read-limited" in parts, "/activities/update" in parts
    if read and update:
        return "read limited + update activities"
    if update:
        return "update activities"
    if read:
        return "read limited"
    return "authenticate only"


PERMISSION_LEVELS = [
    "read limited + update activities",
    "update activities",
    "read limited",
    "authenticate only",
    "no permission granted",
]


def _selections() -> dict[str, dict[str, int]]:
    """Works and affiliations: selected, on ORCID, ignored (two aggregate queries)."""
    kind = case((UserSelection.type == "work", "Works"), else_="Affiliations")
    selected = func.sum(case((UserSelection.selected.is_not(None), 1), else_=0))
    ignored = func.sum(case((UserSelection.ignored.is_not(None), 1), else_=0))
    counts: dict[str, dict[str, int]] = {"selected": Counter(), "on ORCID": Counter(), "ignored": Counter()}
    rows = db.session.execute(
        select(kind, selected, ignored)
        .where(UserSelection.deleted.is_(None), UserSelection.type.in_(["work", *AFFILIATION_TYPES]))
        .group_by(kind)
    )
    for label, n_selected, n_ignored in rows:
        counts["selected"][label] += int(n_selected or 0)
        counts["ignored"][label] += int(n_ignored or 0)
    put_kind = case((PutCode.type == "work", "Works"), else_="Affiliations")
    rows = db.session.execute(
        select(put_kind, func.count())
        .where(PutCode.deleted.is_(None), PutCode.type.in_(["work", *AFFILIATION_TYPES]))
        .group_by(put_kind)
    )
    for label, n in rows:
        counts["on ORCID"][label] += int(n)
    return counts


def build_dashboard(now: datetime) -> tuple[Totals, list[Figure]]:
    """The headline totals and every figure of the dashboard."""
    orcids, totals, labels = _orcid_groups(now)
    by_group = Counter(label for _, label, _ in orcids)
    figures = [
        Figure(
            "orcids-by-group",
            "ORCID iDs by group",
            "pie",
            "Group",
            labels,
            {"ORCID iDs": [by_group[g] for g in labels]},
            "Groups by job title (groups table); a person with no matching title is in Others.",
        )
    ]

    per_year: dict[str, Counter] = defaultdict(Counter)
    for _, label, added in orcids:
        per_year[label][str(added.year)] += 1
    years = sorted({y for counts in per_year.values() for y in counts})
    figures.append(
        Figure(
            "registrations-per-year",
            "ORCID iDs registered per year, by group",
            "stacked",
            "Year",
            years,
            {g: [per_year[g][y] for y in years] for g in labels},
        )
    )

    scope_rows = db.session.execute(
        select(Token.scope, func.count()).where(Token.deleted.is_(None), Token.expiration > now).group_by(Token.scope)
    )
    scopes: Counter[str] = Counter()
    for scope, n in scope_rows:
        scopes[scope_label(scope)] += n
    scope_names = sorted(scopes, key=lambda s: (-scopes[s], s))
    figures.append(
        Figure(
            "tokens-by-scope",
            "Live tokens by scope combination",
            "hbar",
            "Scopes",
            scope_names,
            {"tokens": [scopes[s] for s in scope_names]},
        )
    )

    live = _live_scopes(now)
    faculty = Counter(_permission_level(live.get(orcid)) for orcid, label, _ in orcids if label == FACULTY)
    figures.append(
        Figure(
            "faculty-permissions",
            "Permissions granted by faculty with an ORCID iD",
            "hbar",
            "Permission",
            PERMISSION_LEVELS,
            {"faculty": [faculty[p] for p in PERMISSION_LEVELS]},
        )
    )

    counts = _selections()
    kinds = ["Works", "Affiliations"]
    figures.append(
        Figure(
            "works-and-affiliations",
            "Works and affiliations: selected, on ORCID, ignored",
            "bar",
            "Kind",
            kinds,
            {name: [counter[k] for k in kinds] for name, counter in counts.items()},
        )
    )
    return totals, figures


def figure_by_key(key: str, now: datetime) -> Figure | None:
    """One figure of the dashboard, or None for an unknown key."""
    return next((f for f in build_dashboard(now)[1] if f.key == key), None)
