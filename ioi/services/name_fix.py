"""Fix a person's name in DSpace (admin "Update Names"): rename the authority record linked to an ORCID iD.

The authority key comes from the harvested metadata: an author value's `dspace.authority.key` child
whose `dc.identifier.orcid` grandchild is the iD. DSpace (Atmire patch) renames it through
`PUT authorities/{key}/value`; every item carrying the key then shows the new name under a new key,
which IOI learns by re-harvesting those items (done here for a modest number, else by the next harvest).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import aliased

from ioi.clients.dspace import DSpaceClient, DSpaceError
from ioi.config import Settings
from ioi.extensions import db
from ioi.models import Metadata
from ioi.orcid_ids import normalize_orcid

log = logging.getLogger(__name__)

Outcome = Literal["renamed", "failed", "no_authority_key"]
AUTHORITY_KEY = "dspace.authority.key"
ORCID_FIELD = "dc.identifier.orcid"
REHARVEST_LIMIT = 25  # more affected items than this are left to the next harvest (the admin waits)


@dataclass
class NameFixResult:
    """What the admin sees: the outcome, a sentence, and a link to the repository's items for the iD."""

    outcome: Outcome
    message: str
    search_url: str | None = None


@dataclass(frozen=True)
class AuthorityUse:
    """An authority key linked to an ORCID iD, with the name shown on it and the item carrying it."""

    key: str
    name: str
    handle: str


def normalize_name(name: str) -> str | None:
    """'Surname,  Given name' → 'Surname, Given name'; None unless both parts are there."""
    surname, comma, given = " ".join((name or "").split()).partition(",")
    if not comma or not surname.strip() or not given.strip():
        return None
    return f"{surname.strip()}, {given.strip()}"


def search_url(settings: Settings, orcid: str) -> str:
    """The repository's Discovery search for items whose authors carry this ORCID iD (Atmire `orcidid` filter)."""
    query = urlencode({"filtertype_1": "orcidid", "filter_relational_operator_1": "equals", "filter_1": orcid})
    return f"{(settings.REPOSITORY_URL or '').rstrip('/')}/discover?{query}"


def authority_uses(orcid: str) -> list[AuthorityUse]:
    """Live harvested author values whose authority key is linked to `orcid` (one query)."""
    key, iD, author = aliased(Metadata), aliased(Metadata), aliased(Metadata)
    rows = db.session.execute(
        select(key.value, author.value, key.idInSource)
        .join(iD, iD.parentRowID == key.rowID)
        .join(author, author.rowID == key.parentRowID)
        .where(
            key.source == "dspace",
            key.field == AUTHORITY_KEY,
            key.deleted.is_(None),
            iD.field == ORCID_FIELD,
            iD.value == orcid,
            iD.deleted.is_(None),
            author.deleted.is_(None),
        )
        .order_by(key.idInSource)
    ).all()
    return [AuthorityUse(*row) for row in rows]


def authority_keys(orcid: str) -> list[str]:
    """The distinct authority keys linked to `orcid` in the harvested metadata, most used first."""
    counts: dict[str, int] = {}
    for use in authority_uses(orcid):
        counts[use.key] = counts.get(use.key, 0) + 1
    return sorted(counts, key=lambda k: -counts[k])


def fix_author_name(
    settings: Settings, orcid: str, new_name: str, *, client: DSpaceClient | None = None
) -> NameFixResult:
    """Rename in DSpace every authority record linked to `orcid` to `new_name` ("Surname, Given name").

    Outcomes: `renamed` (DSpace accepted every rename, or the name was already right), `failed` (bad
    input or DSpace refused), `no_authority_key` (no harvested author value links that iD to a key).
    The caller commits (affected items are re-harvested into the session).
    """
    normal_orcid = normalize_orcid(orcid or "")
    if normal_orcid is None:
        return NameFixResult("failed", f"{orcid!r} is not a valid ORCID iD.")
    name = normalize_name(new_name)
    if name is None:
        return NameFixResult("failed", "Write the name as “Surname, Given name”.", search_url(settings, normal_orcid))
    link = search_url(settings, normal_orcid)
    uses = authority_uses(normal_orcid)
    if not uses:
        return NameFixResult(
            "no_authority_key",
            f"No authority key is linked to {normal_orcid} in the harvested repository metadata; "
            "nothing was changed. (Items get one when the iD is added in DSpace and harvested.)",
            link,
        )
    names: dict[str, set[str]] = {}
    for use in uses:
        names.setdefault(use.key, set()).add(use.name)
    to_rename = [key for key in authority_keys(normal_orcid) if names[key] != {name}]
    if not to_rename:
        return NameFixResult("renamed", f"The repository already shows {normal_orcid} as “{name}”.", link)

    own_client = client is None
    client = client or DSpaceClient.from_settings(settings)
    renamed: list[str] = []
    try:
        for key in to_rename:
            client.rename_authority(key, name)
            renamed.append(key)
        handles = sorted({use.handle for use in uses})
        note = _reharvest(settings, client, handles)
    except DSpaceError as exc:
        log.warning("name fix for %s: %s", normal_orcid, exc)
        done = f" ({len(renamed)} of {len(to_rename)} authority records were renamed first)" if renamed else ""
        return NameFixResult("failed", f"DSpace did not rename the authority record{done}: {exc}", link)
    finally:
        if own_client:
            client.close()
    count = len(to_rename)
    records = "authority record" if count == 1 else f"{count} authority records"
    return NameFixResult("renamed", f"Renamed the {records} of {normal_orcid} to “{name}” in DSpace.{note}", link)


def _reharvest(settings: Settings, client: DSpaceClient, handles: list[str]) -> str:
    """Refresh IOI's copy of the renamed items (their authority keys changed); a note for the message."""
    if len(handles) > REHARVEST_LIMIT:
        return f" IOI's copy of the {len(handles)} items is updated by the next harvest."
    from ioi.services.harvest import harvest_handles
    from ioi.timeutil import now

    try:
        failed = harvest_handles(settings, client, handles, now())
    except DSpaceError as exc:
        log.warning("re-harvest after a name fix failed: %s", exc)
        failed = handles
    if failed:
        return f" {len(failed)} item(s) could not be re-harvested now; the next harvest updates them."
    return ""
