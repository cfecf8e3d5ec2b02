# ruff: noqa: F811 - pytest fixtures imported from test_harvest are used as arguments
"""Update Names: rename the DSpace authority linked to an ORCID iD, against the DSpace 5 and 6 simulators."""

from __future__ import annotations

from datetime import UTC, datetime

from test_harvest import ORCID, instance_dir, puts, repo, simulator  # noqa: F401 - fixtures

from ioi import settings_of
from ioi.sandbox.dspace import MetadataValue
from ioi.services.metadata_store import read_record
from ioi.services.name_fix import authority_keys, fix_author_name, normalize_name

OTHER = "0000-0001-5109-3700"


def seed(repo) -> str:
    """Two items by Jim (ORCID authority) and Ann; harvested. Returns Jim's authority key."""
    jim = repo.sim.add_authority("Babson, Jim", ORCID)
    ann = repo.sim.add_authority("Lee, Ann")
    for number in (1, 2):
        repo.sim.add_item(
            f"10754/{number}",
            [
                ("dc.title", f"Item {number}", "en_US"),
                MetadataValue("dc.contributor.author", "Babson, Jim", None, jim.key, 600),
                MetadataValue("dc.contributor.author", "Lee, Ann", None, ann.key, 600),
            ],
            last_modified=datetime(2020, 1, number, tzinfo=UTC),
        )
    assert repo.harvest() == 0
    repo.sim.clear_calls()
    return jim.key


def renames(repo) -> list:
    return [c for c in puts(repo.sim) if "/authorities/" in c.path]


def test_names_must_read_surname_comma_given_name():
    assert normalize_name("  Babson ,   James  ") == "Babson, James"
    assert normalize_name("James Babson") is None
    assert normalize_name("Babson,") is None


def test_the_authority_linked_to_the_orcid_id_is_renamed_and_the_items_reharvested(repo):
    old_key = seed(repo)
    assert authority_keys(ORCID) == [old_key]
    result = fix_author_name(settings_of(repo.app), ORCID, "Babson,  James", client=repo.client())
    assert result.outcome == "renamed", result.message
    assert "Babson, James" in result.message
    assert result.search_url == (
        f"{repo.url}/discover?filtertype_1=orcidid&filter_relational_operator_1=equals&filter_1={ORCID}"
    )
    assert [c.path for c in renames(repo)] == [f"/rest/authorities/{old_key}/value"]
    assert repo.sim.values("10754/2", "dc.contributor.author") == ["Babson, James", "Lee, Ann"]
    new = [a for a in repo.sim.authorities().values() if a.orcid == ORCID]
    assert [a.name for a in new] == ["Babson, James"] and new[0].key != old_key
    # IOI's copy follows at once: new name, new key, same iD
    author = read_record("dspace", "10754/1")["dc.contributor.author"][0]
    key = author.children["dspace.authority.key"][0]
    assert (author.value, key.value, key.children["dc.identifier.orcid"][0].value) == (
        "Babson, James",
        new[0].key,
        ORCID,
    )
    assert authority_keys(ORCID) == [new[0].key]
    # asking again changes nothing in DSpace
    again = fix_author_name(settings_of(repo.app), ORCID, "Babson, James", client=repo.client())
    assert again.outcome == "renamed" and len(renames(repo)) == 1


def test_an_orcid_id_without_an_authority_key_is_reported(repo):
    seed(repo)
    result = fix_author_name(settings_of(repo.app), OTHER, "Lee, Ann", client=repo.client())
    assert result.outcome == "no_authority_key"
    assert OTHER in result.message and OTHER in result.search_url
    assert renames(repo) == []


def test_bad_input_fails_without_calling_dspace(repo):
    seed(repo)
    settings = settings_of(repo.app)
    assert fix_author_name(settings, ORCID, "James Babson", client=repo.client()).outcome == "failed"
    assert fix_author_name(settings, "0000-0002-1825-0098", "Babson, James", client=repo.client()).outcome == "failed"
    assert repo.sim.calls() == []


def test_a_refusal_by_dspace_is_a_failure(repo):
    seed(repo)
    repo.sim.allow_authority_updates = False  # DSpace answers 400 when REST updates are switched off
    result = fix_author_name(settings_of(repo.app), ORCID, "Babson, James", client=repo.client())
    assert result.outcome == "failed" and "400" in result.message
    assert repo.sim.values("10754/1", "dc.contributor.author")[0] == "Babson, Jim"


def test_a_lost_session_is_renewed_before_renaming(repo):
    seed(repo)
    client = repo.client()
    client.login()
    repo.sim.invalidate_sessions()
    result = fix_author_name(settings_of(repo.app), ORCID, "Babson, James", client=client)
    assert result.outcome == "renamed", result.message
    assert [c.status for c in renames(repo)] == [401, 200]
