"""Server time of the researcher's review page for a person with 1,000 candidate works.

    .venv/bin/python bench/review_bench.py [--database-url URL] [--works 1000] [--runs 20]

Builds the app on a scratch database (SQLite in a temporary directory by default, or the given
URL, e.g. mysql+pymysql://root@127.0.0.1:3306/ioi_bench, which must exist and be empty), migrates
it, seeds a person with a live ORCID token and `--works` repository items matched by name (half
also by ORCID iD), a third of them chosen and some on ORCID, then times GET /orcid/review in the
Flask test client (server time: routing, SQL, template) and counts its SQL statements.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from flask import current_app  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from ioi import create_app, settings_of  # noqa: E402
from ioi.auth import Identity  # noqa: E402
from ioi.extensions import db  # noqa: E402
from ioi.models import Orcid, PutCode  # noqa: E402
from ioi.services import tokens  # noqa: E402
from ioi.services.metadata_store import Value, write_records  # noqa: E402
from ioi.services.people import create_person_from_identity  # noqa: E402
from ioi.services.selections import record_choices  # noqa: E402

ORCID = "0000-0002-1825-0097"
NOW = datetime(2026, 11, 24, 12, 0, 0)
IDENTITY = Identity("900123", "jane.doe@example.edu", "Jane Q. Doe", "Associate Professor", "Physical Sciences")


def seed(works: int) -> None:
    """The person, their token, `works` matching items plus as many by other people, choices, put-codes."""
    write_records(
        "local",
        {"org_7": {"local.org.id": ["7"], "local.org.name": ["Physical Sciences"], "local.org.type": ["division"]}},
        NOW,
    )
    create_person_from_identity(IDENTITY, NOW)
    db.session.add(Orcid(orcid=ORCID, email=IDENTITY.email, name="Jane Doe", localPersonID=int(IDENTITY.person_id)))
    grant = {"access_token": "a" * 36, "refresh_token": "r" * 36, "expires_in": 631138518, "orcid": ORCID}
    grant.update(scope="/authenticate /read-limited /activities/update", name="Jane Doe")
    tokens.store_token(settings_of(current_app), grant, NOW)
    records = {}
    for n in range(1, 2 * works + 1):
        mine = n <= works
        key = [Value(f"k{n}", {"dc.identifier.orcid": [ORCID]})] if mine and n % 2 else []
        author = Value("Doe, Jane Q." if mine else f"Other, Person {n}", {"dspace.authority.key": key} if key else {})
        records[f"10754/{n}"] = {
            "dc.title": [f"Work number {n}"],
            "dc.contributor.author": [author, "Coauthor, Some"],
            "dc.identifier.journal": ["Journal of Benchmarks"],
            "dc.type": ["Article"],
            "dc.date.issued": [f"{2000 + n % 25}-05-01"],
            "dc.identifier.uri": [f"http://hdl.handle.net/10754/{n}"],
            "dc.description.abstract": ["An abstract. " * 20],
        }
    write_records("dspace", records, NOW)
    ids = [f"repository_10754/{n}" for n in range(1, works + 1)]
    record_choices(ORCID, "work", ids[: works // 3], ids[works // 3 : works // 2], NOW)
    db.session.execute(
        sa.insert(PutCode),
        [
            {"orcid": ORCID, "type": "work", "putCode": str(n), "localSourceRecordID": local_id}
            | {"submittedData": "<work/>", "format": "xml", "apiResponse": "201"}
            for n, local_id in enumerate(ids[: works // 4])
        ],
    )
    db.session.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--works", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        app = create_app({"SECRET_KEY": "bench-secret-key-0123456789", "DATABASE_URL": url})
        with app.app_context():
            upgrade(directory=str(PROJECT / "ioi" / "migrations"))
            started = time.perf_counter()
            seed(args.works)
            print(f"seeded {args.works} matching works (+{args.works} others) in {time.perf_counter() - started:.1f} s")
            client = app.test_client()
            with client.session_transaction() as session:
                session["identity"] = {**asdict(IDENTITY), "start_date": None}
            count = 0

            def counter(*_):
                nonlocal count
                count += 1

            sa.event.listen(db.engine, "before_cursor_execute", counter)
            timings = []
            for _ in range(args.runs + 1):
                count = 0
                started = time.perf_counter()
                response = client.get("/orcid/review")
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.status_code
            items = response.get_data(as_text=True).count('name="item"')
            timings = timings[1:]  # the first request warms caches and the template
            print(f"GET /orcid/review on {db.engine.dialect.name}: {items} items, {count} SQL statements")
            print(
                f"server time over {args.runs} runs: median {statistics.median(timings):.0f} ms, "
                f"min {min(timings):.0f} ms, max {max(timings):.0f} ms"
            )
            db.session.remove()
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
