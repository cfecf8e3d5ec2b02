"""The seeded repository generator behind the DSpace simulator."""

from __future__ import annotations

import re
from collections import Counter
from statistics import mean

import requests

from ioi.orcid_ids import is_valid_orcid, make_orcid
from ioi.sandbox.dspace import DSpaceSimulator
from ioi.sandbox.repository_generator import generate_repository
from ioi.sandbox.server import BackgroundServer

REQUIRED = (
    "dc.title",
    "dc.contributor.author",
    "dc.date.issued",
    "dc.date.accessioned",
    "dc.identifier.uri",
    "dc.type",
    "dc.description.abstract",
    "dc.subject",
)


def test_same_seed_same_repository_other_seed_another():
    assert generate_repository(30, seed=5) == generate_repository(30, seed=5)
    assert generate_repository(30, seed=5) != generate_repository(30, seed=6)


def test_items_average_about_forty_values_with_the_usual_fields():
    items = generate_repository(200, seed=1)
    assert 36 <= mean(len(item.metadata) for item in items) <= 44
    for item in items:
        keys = {value.key for value in item.metadata}
        assert set(REQUIRED) <= keys
        kind = next(v.value for v in item.metadata if v.key == "dc.type")
        authors = [v for v in item.metadata if v.key == "dc.contributor.author"]
        assert len(authors) == 1 if kind in ("Thesis", "Dissertation") else len(authors) >= 3


def test_handles_uris_dois_and_journals_look_real():
    items = generate_repository(100, seed=2)
    assert [item.handle for item in items[:2]] == ["10754/600001", "10754/600002"]
    for item in items:
        uri = [v.value for v in item.metadata if v.key == "dc.identifier.uri"]
        assert uri == [f"http://hdl.handle.net/{item.handle}"]
    dois = [v.value for item in items for v in item.metadata if v.key == "dc.identifier.doi"]
    assert len(dois) > 80 and all(re.fullmatch(r"10\.\d{4}/\S+", doi) for doi in dois)
    assert sum(1 for item in items for v in item.metadata if v.key == "dc.identifier.journal") > 30


def test_types_and_issue_date_precisions_are_mixed():
    values = [v for item in generate_repository(200, seed=3) for v in item.metadata]
    types = Counter(v.value for v in values if v.key == "dc.type")
    assert {"Article", "Book Chapter", "Conference Paper", "Dataset", "Thesis", "Preprint"} <= set(types)
    precisions = Counter(len(v.value) for v in values if v.key == "dc.date.issued")
    assert set(precisions) == {4, 7, 10}
    assert {v.value for v in values if v.key == "dc.language.iso"} >= {"en", "ar"}
    assert any(v.key == "dc.contributor.advisor" for v in values)


def test_authors_carry_orcid_authorities_plain_authorities_or_none():
    items = generate_repository(100, seed=4)
    authors = [v for item in items for v in item.metadata if v.key == "dc.contributor.author"]
    authorities = {a.key: a for item in items for a in item.authorities}
    linked = [authorities[v.authority] for v in authors if v.authority]
    assert any(a.orcid for a in linked) and any(not a.orcid for a in linked)
    assert any(v.authority is None for v in authors)
    assert all(is_valid_orcid(a.orcid) for a in linked if a.orcid)
    assert all(v.confidence == 600 for v in authors if v.authority)


def test_known_people_appear_on_items_with_their_orcid():
    people = [("Researcher, Known", make_orcid(123456)), ("Nobody, Plain", None)]
    items = generate_repository(20, seed=5, people=people, people_per_item=(1, 2))
    for item in items:
        names = {v.value for v in item.metadata if v.key == "dc.contributor.author"}
        assert names & {"Researcher, Known", "Nobody, Plain"}
    known = {a.name: a for item in items for a in item.authorities}
    assert known["Researcher, Known"].orcid == make_orcid(123456) and known["Nobody, Plain"].orcid is None


def test_generated_items_load_into_the_simulator_and_read_back_expanded():
    people = [("Researcher, Known", make_orcid(123456))]
    sim = DSpaceSimulator(6, items=generate_repository(3, seed=6, people=people, people_per_item=(1, 1)))
    with BackgroundServer(sim) as server:
        item = requests.get(server.url + "/rest/handle/10754/600001?expand=metadata", timeout=5).json()
    authors = [e["value"] for e in item["metadata"] if e["key"] == "dc.contributor.author"]
    assert any(a.startswith("Researcher, Known::") and a.endswith("::" + make_orcid(123456)) for a in authors)
    assert item["name"] == sim.item("10754/600001").name


def test_a_share_of_items_can_be_withdrawn():
    items = generate_repository(100, seed=8, withdrawn_share=0.2)
    assert 5 <= sum(item.withdrawn for item in items) <= 40
    assert not any(item.withdrawn for item in generate_repository(100, seed=8))
