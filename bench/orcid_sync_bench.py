"""Benchmark syncWorksToORCID against the ORCID simulator at ORCID's member limits (24 req/s, burst 40).

    .venv/bin/python bench/orcid_sync_bench.py [--works 2000] [--people 20] [--rps 23] [--database-url URL]

Seeds researchers with linked repository works and tokens on a scratch database (SQLite by
default), then runs the task's service twice: an initial sync (every work POSTed) and an
unchanged re-sync over the same works (no call expected). Prints requests/s and the 503 count of
the first, and the number of calls of the second.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from ioi import create_app, settings_of  # noqa: E402
from ioi.extensions import db  # noqa: E402
from ioi.models import Orcid  # noqa: E402
from ioi.sandbox.orcid import OrcidSimulator  # noqa: E402
from ioi.services import tokens  # noqa: E402
from ioi.services.metadata_store import Value, write_records  # noqa: E402
from ioi.services.work_sync import PROCESS, WORKERS, sync_works  # noqa: E402
from ioi.taskframe import run_task  # noqa: E402
from ioi.timeutil import now  # noqa: E402


def seed(sim: OrcidSimulator, settings, people: int, works: int) -> None:
    """`people` researchers sharing `works` linked repository works, each with a stored token."""
    moment = now()
    per_person = works // people
    for index in range(people):
        researcher = sim.create_researcher("Bench", f"Person{index}")
        issued = sim.issue_token(settings.OAUTH_CLIENT_ID, researcher.orcid)
        tokens.store_token(
            settings,
            {"access_token": issued.access_token, "refresh_token": issued.refresh_token, "expires_in": 631138518,
             "scope": issued.scope, "orcid": researcher.orcid, "name": researcher.name},
            moment,
        )  # fmt: skip
        db.session.add(Orcid(email=f"b{index}@example.edu", orcid=researcher.orcid, name=researcher.name,
                             localPersonID=index + 1))  # fmt: skip
        records = {}
        for n in range(per_person):
            handle = f"10754/{index + 1}{n:05d}"
            key = Value(f"k{index}", {"dc.identifier.orcid": [researcher.orcid]})
            author = Value("Person, Bench", {"dspace.authority.key": [key]})
            records[handle] = {
                "dc.title": [f"Benchmark work {handle}"],
                "dc.contributor.author": [author],
                "dc.type": ["Article"],
                "dc.date.issued": ["2020-05-17"],
                "dc.identifier.uri": [f"http://hdl.handle.net/{handle}"],
                "dc.identifier.doi": [f"10.5555/{index + 1}.{n}"],
            }
        write_records("dspace", records, moment)
        db.session.commit()


def timed_run(app, argv: list[str], workers: int) -> float:
    def work(ctx):
        sync_works(ctx, workers=workers)

    started = time.perf_counter()
    status = run_task(PROCESS, "bench", work, argv, options=("from_date", "handle", "orcid"), app=app)
    elapsed = time.perf_counter() - started
    if status != 0:
        print(f"task exit status {status}", file=sys.stderr)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", type=int, default=2000)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--rps", type=float, default=23.0, help="ORCID_MAX_RPS for IOI's client (≤ 24)")
    parser.add_argument("--burst", type=int, default=30, help="ORCID_BURST for IOI's client (≤ 40)")
    parser.add_argument("--workers", type=int, default=WORKERS, help="task threads (default as the task)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the simulator adds to each call")
    parser.add_argument("--database-url", default=None, help="default: a scratch SQLite file")
    args = parser.parse_args(argv)

    sim = OrcidSimulator(rate=24.0, burst=40)
    client = sim.register_client(name="IOI bench")
    with tempfile.TemporaryDirectory() as scratch, sim.serve() as server:
        database_url = args.database_url or f"sqlite:///{scratch}/bench.sqlite"
        app = create_app(
            {
                "SECRET_KEY": "bench-secret-key-0123456789",
                "DATABASE_URL": database_url,
                "ORCID_API_URL": f"{server.url}/v3.0/",
                "OAUTH_TOKEN_URL": f"{server.url}/oauth/token",
                "OAUTH_REVOKE_URL": f"{server.url}/oauth/revoke",
                "OAUTH_CLIENT_ID": client.client_id,
                "OAUTH_CLIENT_SECRET": client.client_secret,
                "ORCID_MAX_RPS": args.rps,
                "ORCID_BURST": args.burst,
            }
        )
        app.instance_path = scratch  # the task lock file (SQLite) apart from a real instance's
        with app.app_context():
            upgrade()
            seed(sim, settings_of(app), args.people, args.works)
            sim.clear_calls()
            sim.add_latency(args.latency)

            elapsed = timed_run(app, [], args.workers)
            calls = sim.calls
            refused = sum(1 for c in calls if c.status == 503)
            stored = len(sim.items())
            print(
                f"initial sync: {len(calls)} calls for {stored} works in {elapsed:.1f} s = "
                f"{len(calls) / elapsed:.1f} req/s, {refused} x 503 (client at {args.rps} req/s, burst {args.burst}, "
                f"{args.workers} workers; simulator limit 24 req/s, burst 40, latency {args.latency * 1000:.0f} ms)"
            )

            sim.clear_calls()
            elapsed = timed_run(app, ["--from-date", "2000-01-01"], args.workers)
            print(f"unchanged re-sync over the same {stored} works: {len(sim.calls)} calls in {elapsed:.1f} s")
            db.session.remove()
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
