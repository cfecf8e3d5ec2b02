"""Update Names: the form, its validation and the three outcomes of the name-fix service."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest
from test_admin_helpers import sign_in, token_from

ORCID = "0000-0002-1825-0097"


@dataclass
class FakeResult:
    outcome: str
    message: str
    search_url: str | None = None


@pytest.fixture
def name_fix(monkeypatch):
    """A stand-in for ioi.services.name_fix (the real one talks to DSpace); records its calls."""
    module = types.ModuleType("ioi.services.name_fix")
    module.calls = []
    module.result = FakeResult("renamed", "Renamed.")

    def fix_author_name(settings, orcid, new_name):
        module.calls.append((orcid, new_name))
        return module.result

    module.fix_author_name = fix_author_name
    monkeypatch.setitem(sys.modules, "ioi.services.name_fix", module)
    return module


def submit(client, orcid: str, name: str):
    token = token_from(client.get("/admin/names").text)
    return client.post("/admin/names", data={"csrf_token": token, "orcid": orcid, "name": name})


def test_a_rename_shows_success_with_the_repository_link(app, client, name_fix):
    sign_in(client)
    name_fix.result = FakeResult("renamed", "Renamed the authority record to “Curie, Marie”.",
                                 "https://repository.example.edu/discover?filter_1=" + ORCID)  # fmt: skip
    page = submit(client, f"https://orcid.org/{ORCID}", "  Curie ,  Marie ")
    assert name_fix.calls == [(ORCID, "Curie, Marie")]  # normalised before the service sees them
    assert 'class="flash flash-success"' in page.text and "Renamed the authority record" in page.text
    assert f'href="https://repository.example.edu/discover?filter_1={ORCID}"' in page.text


def test_failure_and_no_authority_key_have_their_own_messages(app, client, name_fix):
    sign_in(client)
    name_fix.result = FakeResult("failed", "DSpace did not rename the authority record: 500 <oops>")
    page = submit(client, ORCID, "Curie, Marie")
    assert 'class="flash flash-error"' in page.text and "500 &lt;oops&gt;" in page.text
    name_fix.result = FakeResult("no_authority_key", "No authority key is linked to " + ORCID)
    page = submit(client, ORCID, "Curie, Marie")
    assert 'class="flash flash-warning"' in page.text and "No authority key is linked" in page.text


@pytest.mark.parametrize(
    "orcid, name, message",
    [
        ("0000-0002-1825-0098", "Curie, Marie", "Not a valid ORCID iD"),
        ("not an id", "Curie, Marie", "Not a valid ORCID iD"),
        (ORCID, "Marie Curie", "Surname, Given name"),
        (ORCID, "Curie,", "Surname, Given name"),
        ("", "", "This field is required"),
    ],
)
def test_bad_input_is_refused_before_the_service_is_called(app, client, name_fix, orcid, name, message):
    sign_in(client)
    page = submit(client, orcid, name)
    assert message in page.text
    assert name_fix.calls == []


def test_an_unexpected_error_is_reported_not_a_crash(app, client, name_fix):
    def broken(settings, orcid, new_name):
        raise RuntimeError("boom")

    name_fix.fix_author_name = broken
    sign_in(client)
    page = submit(client, ORCID, "Curie, Marie")
    assert page.status_code == 200 and "an unexpected error occurred" in page.text


def test_the_real_service_answers_no_authority_key_for_an_unknown_id(app, client):
    pytest.importorskip("ioi.services.name_fix")
    sign_in(client)
    page = submit(client, ORCID, "Curie, Marie")
    assert 'class="flash flash-warning"' in page.text
