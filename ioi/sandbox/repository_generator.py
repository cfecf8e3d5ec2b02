"""A seeded generator of realistic DSpace items (Dublin Core as a KAUST-like repository holds it)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ioi.orcid_ids import make_orcid
from ioi.sandbox.dspace_model import CF_ACCEPTED, Authority, MetadataValue, person_authority

GIVEN = (
    "Ahmed Aisha Ali Anna Carlos Chen Daniel Elena Fatima Hana Hiroshi Ibrahim Ivan Jana Jin Jose Karim Laura "
    "Lei Maria Mei Mohammed Nadia Noura Omar Pablo Priya Rahul Sara Sergei Sofia Tariq Wei Yara Yusuf Zainab"
).split()
FAMILY = (
    "Al-Harbi Alghamdi Bakr Chen Costa Dubois Fischer Garcia Haddad Hassan Ivanova Kim Kowalski Kumar Li Liu "
    "Martin Mohamed Muller Nakamura Nguyen Novak Okafor Park Patel Rossi Santos Schmidt Silva Smith Suzuki "
    "Tanaka Wang Yamamoto Zhang"
).split()
JOURNALS = (
    ("Nature Communications", "2041-1723", "Springer Nature", "ncomms"),
    ("Physical Review Letters", "0031-9007", "American Physical Society", "PhysRevLett"),
    ("Journal of the American Chemical Society", "0002-7863", "American Chemical Society", "jacs"),
    ("Scientific Reports", "2045-2322", "Springer Nature", "srep"),
    ("Advanced Materials", "0935-9648", "Wiley", "adma"),
    ("IEEE Transactions on Signal Processing", "1053-587X", "IEEE", "TSP"),
    ("Marine Pollution Bulletin", "0025-326X", "Elsevier BV", "marpolbul"),
    ("Bioinformatics", "1367-4803", "Oxford University Press", "bioinformatics"),
    ("Water Research", "0043-1354", "Elsevier BV", "watres"),
    ("ACS Nano", "1936-0851", "American Chemical Society", "acsnano"),
)
TYPES = ("Article", "Article", "Article", "Article", "Conference Paper", "Book Chapter", "Dataset", "Thesis")
TYPES += ("Preprint", "Dissertation", "Poster", "Presentation", "Technical Report")
COLLECTIONS = {kind: f"10754/{10 + i}" for i, kind in enumerate(dict.fromkeys(TYPES))}
DEPARTMENTS = (
    "Biological and Environmental Science and Engineering (BESE) Division",
    "Computer, Electrical and Mathematical Science and Engineering (CEMSE) Division",
    "Physical Science and Engineering (PSE) Division",
    "Red Sea Research Center (RSRC)",
    "KAUST Catalysis Center (KCC)",
    "Water Desalination and Reuse Research Center (WDRC)",
    "Applied Mathematics and Computational Science Program",
    "Marine Science Program",
)
ADJECTIVES = "Scalable Robust Efficient Novel Adaptive Stable Ultrafast Sparse Low-cost High-resolution".split()
NOUNS = "framework synthesis analysis model method catalyst membrane sensor algorithm survey".split()
TOPICS = (
    "coral reef resilience",
    "perovskite solar cells",
    "seawater desalination",
    "graph neural networks",
    "CO2 hydrogenation",
    "date palm genomics",
    "wireless channel estimation",
    "metal-organic frameworks",
    "Red Sea mangroves",
    "seismic imaging",
    "protein structure prediction",
    "2D semiconductors",
)
SUBJECTS = (
    "Machine learning,Catalysis,Desalination,Coral reefs,Photovoltaics,Genomics,Membranes,Optimization,"
    "Climate change,Nanomaterials,Signal processing,Microbiology,Fluid dynamics,Remote sensing,Graphene,"
    "Deep learning,Electrochemistry,Ocean acidification,Plant biology,High-performance computing"
).split(",")
SENTENCES = (
    "We present a {adj} {noun} for {topic}.",
    "Existing approaches to {topic} suffer from limited accuracy and high cost.",
    "Our {noun} combines experiments with large-scale simulations.",
    "Results show a {pct}% improvement over the state of the art.",
    "The data were collected during {year} field campaigns in the Red Sea.",
    "These findings open new directions for {topic}.",
)
INSTITUTIONS = (
    "King Abdullah University of Science and Technology (KAUST), Thuwal, Saudi Arabia",
    "Department of Chemistry, University of Cambridge, Cambridge, United Kingdom",
    "Max Planck Institute for Marine Microbiology, Bremen, Germany",
    "School of Engineering, Stanford University, Stanford, CA, United States",
    "Institute of Oceanology, Chinese Academy of Sciences, Qingdao, China",
    "Department of Physics, ETH Zurich, Zurich, Switzerland",
)
FUNDERS = ("King Abdullah University of Science and Technology (KAUST)", "KAUST Office of Sponsored Research (OSR)")


@dataclass
class ItemSeed:
    """One generated item, ready for `DSpaceSimulator.add_item(**vars(seed))`."""

    handle: str
    metadata: list[MetadataValue]
    authorities: list[Authority]
    last_modified: datetime
    collection: str
    withdrawn: bool = False


@dataclass
class _Person:
    name: str
    authority: Authority | None


@dataclass
class _Builder:
    """Collects one item's values and the authorities they use."""

    language: str | None
    metadata: list[MetadataValue] = field(default_factory=list)
    authorities: dict[str, Authority] = field(default_factory=dict)

    def add(self, key: str, value: str, language: str | None = None) -> None:
        self.metadata.append(MetadataValue(key, value, language))

    def text(self, key: str, value: str) -> None:
        self.add(key, value, self.language)

    def person(self, key: str, person: _Person) -> None:
        if person.authority is None:
            self.add(key, person.name, self.language)
            return
        self.authorities[person.authority.key] = person.authority
        self.metadata.append(MetadataValue(key, person.name, self.language, person.authority.key, CF_ACCEPTED))


def _pool(rng: random.Random, size: int) -> list[_Person]:
    """Distinct random people: ~45 % with an ORCID authority, ~35 % a plain authority, the rest none."""
    people: dict[str, _Person] = {}
    while len(people) < size:
        name = f"{rng.choice(FAMILY)}, {rng.choice(GIVEN)}"
        if rng.random() < 0.4:
            name += f" {rng.choice('ABCDEFGHJKLMNRST')}."
        roll = rng.random()
        if roll < 0.45:
            authority = person_authority(name, make_orcid(rng.randrange(10_000_000, 40_000_000)))
        elif roll < 0.8:
            authority = person_authority(name)
        else:
            authority = None
        people.setdefault(name, _Person(name, authority))
    return list(people.values())


def _issued(rng: random.Random, end: datetime) -> tuple[str, datetime]:
    """dc.date.issued in mixed precision, and the day it stands for."""
    day = datetime(rng.randint(2009, end.year - 1), 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(365))
    roll = rng.random()
    text = day.strftime("%Y") if roll < 0.2 else day.strftime("%Y-%m") if roll < 0.4 else day.strftime("%Y-%m-%d")
    return text, day


def _abstract(rng: random.Random, topic: str, year: int) -> str:
    picks = rng.sample(SENTENCES, rng.randint(3, 5))
    values = {"adj": rng.choice(ADJECTIVES).lower(), "noun": rng.choice(NOUNS), "topic": topic}
    return " ".join(s.format(pct=rng.randint(5, 60), year=year, **values) for s in picks)


def generate_repository(
    n: int,
    seed: int = 0,
    *,
    people: Sequence[tuple[str, str | None]] = (),
    people_per_item: tuple[int, int] = (1, 2),
    handle_prefix: str = "10754",
    first_suffix: int = 600001,
    end: datetime = datetime(2024, 6, 1, tzinfo=UTC),
    withdrawn_share: float = 0.0,
) -> list[ItemSeed]:
    """`n` items with realistic Dublin Core (about 40 values each), the same for the same arguments.

    `people` are known (name, ORCID iD or None) pairs; each item then gets `people_per_item` of them
    among its authors (with an ORCID authority when an iD is given, else a plain person authority).
    """
    rng = random.Random(seed)
    pool = _pool(rng, min(max(40, n * 2), 8000))  # ~22,000 distinct names exist; authors recur
    known = [_Person(name, person_authority(name, orcid)) for name, orcid in people]
    return [
        _item(rng, f"{handle_prefix}/{first_suffix + i}", pool, known, people_per_item, end, withdrawn_share)
        for i in range(n)
    ]


def _item(
    rng: random.Random,
    handle: str,
    pool: list[_Person],
    known: list[_Person],
    people_per_item: tuple[int, int],
    end: datetime,
    withdrawn_share: float,
) -> ItemSeed:
    kind = rng.choice(TYPES)
    item = _Builder(rng.choice(("en_US", "en_US", "en", None)))
    topic = rng.choice(TOPICS)
    issued, issued_day = _issued(rng, end)
    accessioned = min(issued_day + timedelta(days=rng.randrange(400), seconds=rng.randrange(86400)), end)
    modified = accessioned + (end - accessioned) * rng.random()
    stamp = accessioned.strftime("%Y-%m-%dT%H:%M:%SZ")

    thesis = kind in ("Thesis", "Dissertation")
    authors = rng.sample(pool, 1 if thesis else rng.randint(3, 13))
    if known:
        picks = rng.sample(known, min(len(known), rng.randint(*people_per_item)))
        if thesis:
            authors = picks[:1]
        else:
            for person in picks:
                authors.insert(rng.randrange(len(authors) + 1), person)
    for person in authors:
        item.person("dc.contributor.author", person)
    if thesis:
        item.person("dc.contributor.advisor", rng.choice(pool))
        for person in rng.sample(pool, rng.randint(2, 4)):
            item.person("dc.contributor.committeemember", person)
    for department in rng.sample(DEPARTMENTS, rng.randint(1, 3)):
        item.add("dc.contributor.department", department)
    for institution in rng.sample(INSTITUTIONS, rng.randint(1, 5)):
        item.add("dc.contributor.institution", institution)
    item.add("dc.date.accessioned", stamp)
    item.add("dc.date.available", stamp)
    item.add("dc.date.issued", issued)
    if rng.random() < 0.5:
        item.add("dc.date.published-online", issued_day.strftime("%Y-%m-%d"))
    journal, issn, publisher, abbrev = rng.choice(JOURNALS)
    doi = f"10.{rng.randint(1000, 9999)}/{abbrev}.{issued_day.year}.{rng.randint(1000, 99999)}"
    if kind in ("Article", "Preprint"):
        item.add("dc.identifier.journal", journal)
        item.add("dc.identifier.issn", issn)
    if kind == "Book Chapter":
        item.add("dc.identifier.isbn", f"978-3-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-{rng.randint(0, 9)}")
    if not thesis or rng.random() < 0.3:
        item.add("dc.identifier.doi", doi)
    item.add(
        "dc.identifier.citation",
        f"{authors[0].name} et al. ({issued_day.year}). {topic.capitalize()}. {journal}. doi:{doi}",
    )
    item.add("dc.identifier.uri", f"http://hdl.handle.net/{handle}")
    for key, chance, value in (
        ("dc.identifier.eid", 0.7, f"2-s2.0-{rng.randint(10**10, 10**11)}"),
        ("dc.identifier.wosut", 0.5, f"WOS:{rng.randint(10**14, 10**15):015d}"),
        ("dc.identifier.pmid", 0.2, str(rng.randint(20_000_000, 39_000_000))),
        (
            "dc.identifier.arxivid",
            1.0 if kind == "Preprint" else 0.15,
            f"{rng.randint(1501, 2412)}.{rng.randint(1, 19999):05d}",
        ),
    ):
        if rng.random() < chance:
            item.add(key, value)
    item.text("dc.description.abstract", _abstract(rng, topic, issued_day.year))
    item.add("dc.description.provenance", f"Submitted by Repository Admin (repository@example.edu) on {stamp}", "en")
    item.add("dc.description.provenance", f"Made available in DSpace on {stamp} (GMT).", "en")
    if rng.random() < 0.5:
        item.text("dc.description", "The authors thank the KAUST Core Labs for their support.")
    if rng.random() < 0.6:
        item.text("dc.description.sponsorship", f"This work was supported by {rng.choice(FUNDERS)}.")
    item.add("dc.language.iso", rng.choice(("en", "en", "en", "ar", "fr")))
    item.text("dc.publisher", "King Abdullah University of Science and Technology" if thesis else publisher)
    if kind in ("Conference Paper", "Book Chapter"):
        item.text("dc.relation.ispartof", f"Proceedings of the {rng.randint(10, 40)}th Symposium on {topic}")
    item.add("dc.relation.url", f"https://doi.org/{doi}")
    item.text("dc.rights", "This is an open access article distributed under the Creative Commons license.")
    item.add("dc.rights.uri", "http://creativecommons.org/licenses/by/4.0/")
    for subject in rng.sample(SUBJECTS, rng.randint(4, 10)):
        item.text("dc.subject", subject)
    title = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} for {topic}"
    item.text("dc.title", title)
    if rng.random() < 0.1:
        item.text("dc.title.alternative", title.upper())
    item.text("dc.type", kind)
    if rng.random() < 0.3:
        item.add("dc.eprint.version", rng.choice(("Publisher's Version/PDF", "Post-print", "Pre-print")))
    return ItemSeed(
        handle=handle,
        metadata=item.metadata,
        authorities=list(item.authorities.values()),
        last_modified=modified,
        collection=COLLECTIONS[kind],
        withdrawn=rng.random() < withdrawn_share,
    )
