"""Benchmark: upload a Persons Data file (50,000 people by default) into MariaDB; print time and peak RSS.

    .venv/bin/python bench/upload_bench.py                 # 50,000 people, plus a re-upload and relations
    .venv/bin/python bench/upload_bench.py --people 10000
    .venv/bin/python bench/upload_bench.py --compare       # 10,000 vs 50,000 in fresh processes: flat memory?

Uses a scratch database on the server of IOI_BENCH_DATABASE_URL (default
mysql+pymysql://root@127.0.0.1:3306/), created, migrated and dropped by the script.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SERVER_URL = os.environ.get("IOI_BENCH_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/")
PERSONS_HEADER = "PERSON_ID,LAST_NAME,FIRST_NAME,MIDDLE_NAME,LOCAL_PERSON_ID,EMAIL\r\n"
RELATIONS_HEADER = "PERSON_ID,ORG_ID,JOB_TITLE,START_DATE,END_DATE\r\n"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def persons_file(n: int) -> bytes:
    rows = (
        f"{100000 + i},Surname{i},Given{i},M,{200000 + i if i % 3 else 20240000000 + i},person{i}@example.edu\r\n"
        for i in range(n)
    )
    return (PERSONS_HEADER + "".join(rows)).encode("utf-8")


def relations_file(n: int) -> bytes:
    titles = ("Professor", "PhD Student", "Postdoctoral Fellow", "Librarian")
    rows = (f"{100000 + i},{i % 40},{titles[i % 4]},2019-10-01 00:00:00,\r\n" for i in range(n))
    return (RELATIONS_HEADER + "".join(rows)).encode("utf-8")


def scratch_database() -> tuple[str, str]:
    name = f"ioi_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(sa.make_url(SERVER_URL).set(database=""))
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    engine.dispose()
    return name, sa.make_url(SERVER_URL).set(database=name, query={"charset": "utf8mb4"}).render_as_string(False)


def drop_database(name: str) -> None:
    engine = sa.create_engine(sa.make_url(SERVER_URL).set(database=""))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    engine.dispose()


def run(n: int, full: bool) -> None:
    from flask_migrate import upgrade

    from ioi import create_app
    from ioi.extensions import db
    from ioi.models import Metadata
    from ioi.services.uploads import import_file

    name, url = scratch_database()
    try:
        app = create_app({"SECRET_KEY": "bench-secret-key-0123456789", "DATABASE_URL": url})
        with app.app_context():
            upgrade()
            data = persons_file(n)
            print(f"{n} people, {len(data) / 1048576:.1f} MB file; peak RSS before upload {peak_rss_mb():.0f} MB")
            steps = [("persons, first upload", "persons", data)]
            if full:
                steps += [
                    ("persons, same file again", "persons", data),
                    ("relations, first upload", "relations", relations_file(n)),
                ]
            for label, kind, payload in steps:
                started = time.perf_counter()
                result = import_file(kind, f"{kind}.csv", payload, datetime.now().replace(microsecond=0))
                seconds = time.perf_counter() - started
                assert result.applied, result.errors[:5]
                print(f"  {label:<26} {seconds:6.1f} s  {n / seconds:8.0f} rows/s  peak RSS {peak_rss_mb():.0f} MB  "
                      f"{result.summary()}")  # fmt: skip
            rows = db.session.execute(sa.select(sa.func.count()).select_from(Metadata)).scalar()
            print(f"  metadata rows: {rows}")
            db.session.remove()
            db.engine.dispose()
    finally:
        drop_database(name)


def compare() -> None:
    for n in (10000, 50000):
        subprocess.run([sys.executable, __file__, "--people", str(n), "--quick"], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50000)
    parser.add_argument("--quick", action="store_true", help="only the first persons upload")
    parser.add_argument("--compare", action="store_true", help="10,000 vs 50,000 people in fresh processes")
    args = parser.parse_args(argv)
    if args.compare:
        compare()
    else:
        run(args.people, full=not args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
