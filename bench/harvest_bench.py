"""Harvest speed: N generated items from the DSpace simulator (zero latency) into a scratch MariaDB database.

    .venv/bin/python bench/harvest_bench.py [--items 2000] [--version 6] [--server mysql+pymysql://root@127.0.0.1:3306/]

Prints items/s for the first harvest (every item new, ~40 values each) and for re-harvests of the
same items unchanged (`--from-date` far back, so every item is listed again): as the task runs
(an item listed with the datestamp of the harvested version is not fetched), and with every item
fetched again from REST (the raw JSON compared, no value comparison). The simulator runs in its own
process, as DSpace would, so it does not share this process's GIL, and keeps connections alive as
DSpace's Tomcat does.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import resource
import socket
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def serve(items: int, version: int, port: int, ready) -> None:
    """The simulator process: generate, then serve with keep-alive connections, as DSpace's Tomcat does.

    Werkzeug's development server closes every connection after one response, which would make each
    harvester request open a new connection; gunicorn's threaded worker keeps them open.
    """
    from gunicorn.app.base import BaseApplication

    from ioi.sandbox.dspace import DSpaceSimulator
    from ioi.sandbox.repository_generator import generate_repository

    sim = DSpaceSimulator(version, items=generate_repository(items, seed=1), oai_host="repository.example.edu")

    class Server(BaseApplication):
        def load_config(self) -> None:
            settings = {
                "bind": f"127.0.0.1:{port}",
                "workers": 1,
                "worker_class": "gthread",
                "threads": 16,
                "keepalive": 20,
                "graceful_timeout": 1,
                "loglevel": "warning",  # no line per request: it would slow the server down
                "when_ready": lambda server: ready.put(f"http://127.0.0.1:{port}"),
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            return sim

    Server().run()


def start_simulator(items: int, version: int) -> tuple[str, multiprocessing.Process]:
    """The simulator in its own process, as DSpace is: it does not share the harvester's GIL."""
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ready: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.get_context("fork").Process(target=serve, args=(items, version, port, ready), daemon=True)
    process.start()
    return ready.get(timeout=120), process


def _is_mariadb(proc: Path) -> bool:
    try:
        return (proc / "comm").read_text().strip() in ("mariadbd", "mysqld")
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--version", type=int, choices=(5, 6), default=6)
    parser.add_argument(
        "--server", default=os.environ.get("IOI_TEST_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/")
    )
    parser.add_argument("--batch", type=int, default=50, help="items written per commit")
    parser.add_argument("--workers", type=int, default=8, help="items fetched at once")
    parser.add_argument("--writers", type=int, default=2, help="batches written at once")
    parser.add_argument("--profile", metavar="FILE", help="profile the first harvest into FILE and stop")
    args = parser.parse_args()
    os.environ["IOI_TEST_DATABASE_URL"] = args.server

    import conftest
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from ioi import create_app
    from ioi.clients.dspace import DSpaceClient
    from ioi.clients.oai import OaiClient
    from ioi.extensions import db
    from ioi.models import Metadata
    from ioi.services.harvest import PROCESS, harvest_repository
    from ioi.taskframe import run_task

    url, simulator = start_simulator(args.items, args.version)
    name, database_url = conftest.create_scratch_database("ioi_bench")
    try:
        app = create_app(
            {
                "SECRET_KEY": conftest.TEST_SECRET,
                "DATABASE_URL": database_url,
                "DSPACE_VERSION": str(args.version),
                "REPOSITORY_BASE_URL": "repository.example.edu",
                "REPOSITORY_URL": url,
                "REPOSITORY_USER": "admin@example.edu",
                "REPOSITORY_PW": "admin",
                "DSPACE_REQUEST_DELAY": 0,
            }
        )
        app.instance_path = tempfile.mkdtemp(prefix="ioi-bench-")
        with app.app_context():
            upgrade()

        def cpu_seconds(pid: int | None = None) -> float:
            """User + system CPU seconds of a process and its child processes (this one when None), from /proc."""
            if pid is None:
                usage = resource.getrusage(resource.RUSAGE_SELF)
                return usage.ru_utime + usage.ru_stime
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                return float("nan")
            own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            return own + sum(cpu_seconds(int(child)) for child in children)

        mariadb = next((int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _is_mariadb(p)), None)

        def harvest(*argv: str) -> float:
            client = DSpaceClient(url + "/rest", "admin@example.edu", "admin", args.version)
            oai = OaiClient(url + "/oai/request")
            sizes = {"batch_size": args.batch, "workers": args.workers, "writers": args.writers}
            work = partial(harvest_repository, client=client, oai=oai, **sizes)
            started = time.perf_counter()
            status = run_task(PROCESS, "bench", work, list(argv), ("from_date",), app=app, out=io.StringIO())
            elapsed = time.perf_counter() - started
            if status != 0:
                raise SystemExit(f"harvest failed with status {status}")
            return elapsed

        if args.profile:
            import cProfile

            cProfile.runctx("harvest()", globals(), locals(), args.profile)
            return 0
        before = [cpu_seconds(), cpu_seconds(simulator.pid), cpu_seconds(mariadb)]
        first = harvest()
        after = [cpu_seconds(), cpu_seconds(simulator.pid), cpu_seconds(mariadb)]
        cpu = [b - a for a, b in zip(before, after, strict=True)]
        with app.app_context():
            rows = db.session.execute(select(func.count()).select_from(Metadata)).scalar()
        again = harvest("--from-date", "2000-01-01")
        # the same, but every item fetched again from REST and its raw JSON compared (datestamp check off)
        from ioi.services import harvest as service

        service.harvested_datestamps = lambda handles: {}
        refetch = harvest("--from-date", "2000-01-01")
        print(f"DSpace {args.version} simulator (zero latency), MariaDB, {args.items} items, {rows} metadata rows")
        print(f"harvest (all new):      {first:6.2f} s  {args.items / first:8.0f} items/s")
        print(
            f"  CPU seconds during it: harvester {cpu[0]:.1f}, simulator {cpu[1]:.1f}, MariaDB {cpu[2]:.1f} "
            f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})"
        )
        print(f"re-harvest (unchanged): {again:6.2f} s  {args.items / again:8.0f} items/s  (datestamp = harvested)")
        print(f"re-harvest, refetched:  {refetch:6.2f} s  {args.items / refetch:8.0f} items/s  (raw JSON equal)")
    finally:
        conftest.drop_scratch_database(name)
        simulator.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
