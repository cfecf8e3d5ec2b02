"""Load test of the query API: gunicorn on a scratch MariaDB database, 32 concurrent connections.

    .venv/bin/python bench/query_bench.py [--server mysql+pymysql://root@127.0.0.1:3306/] [--duration 10]

Creates a scratch database, migrates it, seeds a person with 2,000 works, a typical person with
20 works and 5,000 other items, starts gunicorn (`public/wsgi.py`, 2 sync workers by default: one
per core, MariaDB sharing them), loads each case with `wrk` (Debian package `wrk`; a Python
load generator stands in when it is missing), prints req/s and p99 latency (and the 1-minute
load average before each case: other work on the machine skews the figures), then stops
gunicorn and drops the database. Each case runs twice: as deployed (answers cached until the
data changes) and with the cache off (QUERY_CACHE_MB=0: every answer built from the database,
as after each harvest batch). Goal: at least 300 req/s with p99 under 100 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from ioi import create_app  # noqa: E402
from ioi.extensions import db  # noqa: E402
from ioi.models import Orcid  # noqa: E402
from ioi.orcid_ids import make_orcid  # noqa: E402
from ioi.services.metadata_store import Value, write_record, write_records  # noqa: E402

KEY = "bench-query-key-" + uuid.uuid4().hex
SECRET = "bench-secret-" + uuid.uuid4().hex
NOW = datetime(2026, 1, 1, 12, 0, 0)
PEOPLE = {"heavy": ("100001", "Prolific, Paula", 2000), "typical": ("100002", "Typical, Tom", 20)}
OTHER_ITEMS = 5000


def seed(url: str) -> None:
    """Migrate the database and write the people, their iDs and the items."""
    from flask_migrate import upgrade

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET})
    rng = random.Random(8)
    with app.app_context():
        upgrade()
        handle = 0
        for n, (person_id, name, works) in enumerate(PEOPLE.values(), start=1):
            orcid = make_orcid(1000 + n)
            write_record(
                "local", f"person_{person_id}", {"local.person.id": [person_id], "local.person.name": [name]}, NOW
            )
            db.session.add(
                Orcid(email=f"{person_id}@example.edu", orcid=orcid, name=name, localPersonID=int(person_id))
            )
            me = Value(name, {"dspace.authority.key": [Value(f"key-{person_id}", {"dc.identifier.orcid": [orcid]})]})
            for start in range(0, works, 500):
                batch = {}
                for _ in range(min(500, works - start)):
                    handle += 1
                    batch[f"10754/{handle}"] = _item(rng, handle, me)
                write_records("dspace", batch, NOW)
                db.session.commit()
        for _batch in range(0, OTHER_ITEMS, 500):
            batch = {}
            for _ in range(500):
                handle += 1
                batch[f"10754/{handle}"] = _item(rng, handle, None)
            write_records("dspace", batch, NOW)
            db.session.commit()
        db.engine.dispose()


def _item(rng: random.Random, handle: int, author: Value | None) -> dict:
    others = [Value(f"Author{rng.randint(1, 3000)}, A.") for _ in range(rng.randint(3, 10))]
    if author is not None:
        others.insert(rng.randrange(len(others) + 1), author)
    year = rng.randint(2005, 2025)
    return {
        "dc.title": [f"Work number {handle} on coral reefs"],
        "dc.contributor.author": others,
        "dc.date.issued": [f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"],
        "dc.type": [rng.choice(["Article", "Conference Paper", "Preprint", "Book Chapter"])],
        "dc.identifier.journal": ["Journal of Reef Studies"],
        "dc.identifier.doi": [f"10.1000/jrs.{year}.{handle}"],
        "dc.identifier.uri": [f"http://hdl.handle.net/10754/{handle}"],
        "dc.subject": ["corals", "heat stress", "genomics"],
        "dc.description.abstract": ["An abstract " * 40],
        "dc.date.accessioned": ["2020-01-01T00:00:00Z"],
        "dc.date.available": ["2020-01-01T00:00:00Z"],
        "dc.publisher": ["Reef Press"],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(url: str, port: int, args: argparse.Namespace, cache_mb: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "QUERY_CACHE_MB": str(cache_mb),
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET,
        "QUERY_API_KEYS": KEY,
        "INSTITUTION_ABBREVIATION": "TU",
    }
    command = [
        sys.executable, "-m", "gunicorn", "wsgi:app", "--chdir", str(PROJECT / "public"), "--bind", f"127.0.0.1:{port}",
        "--workers", str(args.workers), "--worker-class", args.worker_class, "--threads", str(args.threads),
        "--log-level", "warning", "--backlog", "2048",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=PROJECT, env=env)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gunicorn did not start")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes (Linux /proc; 0 elsewhere)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.0


def children_of(pid: int) -> list[int]:
    """The gunicorn workers: processes whose parent is the master."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(entry.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.parent.name))
        except (OSError, ValueError):
            continue
    return found


def drain(url: str) -> None:
    """Wait until the requests a load run left queued in gunicorn are served: one request, queued behind them."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    conn.request("GET", f"{parts.path}?{parts.query}", headers={"Authorization": f"Bearer {KEY}"})
    conn.getresponse().read()
    conn.close()


def run_wrk(url: str, connections: int, seconds: int) -> tuple[float, float]:
    """(requests/s, p99 latency in ms) measured by wrk."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency"]
    output = subprocess.run(
        [*command, "-H", f"Authorization: Bearer {KEY}", url], capture_output=True, text=True, check=True
    ).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", output).groups()
    return rps, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_python_load(url: str, connections: int, seconds: int) -> tuple[float, float]:
    """The same measure with keep-alive connections from threads, when wrk is not installed."""
    parts = urlsplit(url)
    path = f"{parts.path}?{parts.query}"
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine = []
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Authorization": f"Bearer {KEY}"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                continue
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
    return len(latencies) / elapsed, p99


CASES = [
    ("typical", "works", "json"),
    ("typical", "works", "csv"),
    ("typical", "orcid", "json"),
    ("heavy", "works", "json"),
    ("heavy", "works", "csv"),
]


def run_cases(load, port: int, workers: list[int], label: str, args: argparse.Namespace) -> None:
    """Load each case in turn and print its line."""
    for person, request, response in CASES:
        person_id, _, works = PEOPLE[person]
        target = f"http://127.0.0.1:{port}/query?tuid={person_id}&request={request}&response={response}"
        load(target, args.connections, 1)  # warm up connections and caches
        drain(target)
        before = os.getloadavg()[0]
        app_cpu = cpu_seconds(workers)
        rps, p99 = load(target, args.connections, args.duration)
        app_ms = (cpu_seconds(workers) - app_cpu) * 1000 / max(rps * args.duration, 1)
        case = f"{person} ({works} works) {request} {response}, {label}"
        print(f"{case:<42} {rps:>8.0f} {p99:>8.1f} {before:>9.2f} {app_ms:>12.2f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server", default=os.environ.get("IOI_TEST_DATABASE_URL") or "mysql+pymysql://root@127.0.0.1:3306/"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per case")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    # Sync workers: the kernel's accept queue serves connections in order, which keeps the tail short;
    # gthread (4 threads) gave the same req/s with a longer p99 (threads wait on each other for the GIL).
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    name = f"ioi_bench_{uuid.uuid4().hex[:8]}"
    server = sa.make_url(args.server).set(database="")
    engine = sa.create_engine(server)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    url = server.set(database=name, query={"charset": "utf8mb4"}).render_as_string(hide_password=False)
    gunicorn = None
    try:
        started = time.perf_counter()
        seed(url)
        print(
            f"seeded {sum(p[2] for p in PEOPLE.values()) + OTHER_ITEMS} items in {time.perf_counter() - started:.0f} s"
        )
        load = run_wrk if shutil.which("wrk") else run_python_load
        tool = "wrk" if load is run_wrk else "python load generator"
        print(
            f"gunicorn {args.workers} workers ({args.worker_class}, {args.threads} threads), "
            f"{args.connections} connections, {args.duration} s per case, {tool}, {os.cpu_count()} CPUs"
        )
        print(f"{'case':<42} {'req/s':>8} {'p99 ms':>8} {'load avg':>9} {'app CPU ms/req':>12}")
        for cache_mb, label in ((64, "cached"), (0, "built")):  # as deployed; then every answer built afresh
            port = free_port()
            gunicorn = start_gunicorn(url, port, args, cache_mb)
            run_cases(load, port, children_of(gunicorn.pid), label, args)
            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait(timeout=30)
            gunicorn = None
    finally:
        if gunicorn is not None:
            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait(timeout=30)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
