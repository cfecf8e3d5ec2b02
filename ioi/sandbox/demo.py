"""The one-command demo: IOI with a local ORCID and a local DSpace, all on loopback.

`python -m ioi demo` starts the ORCID and DSpace simulators, seeds a made-up institution (people,
organisations, ~300 repository items authored by them, an admin), starts the web app on its own
SQLite database under instance/ (fresh at every start, like the in-memory simulators), runs the
cron tasks every minute, and prints the addresses and demo accounts. Ctrl-C stops everything.
The settings are also written to instance/demo.env so the tasks can be run by hand meanwhile.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import threading
from pathlib import Path

from flask_migrate import upgrade

from ioi import create_app
from ioi.config import PROJECT_ROOT
from ioi.query import example_curl
from ioi.sandbox.demo_data import demo_people, seed_institution
from ioi.sandbox.dspace import DSpaceSimulator
from ioi.sandbox.orcid import OrcidSimulator
from ioi.sandbox.repository_generator import generate_repository
from ioi.sandbox.server import BackgroundServer
from ioi.timeutil import now

CLIENT_ID = "APP-DEMO000000000001"
CLIENT_SECRET = "demo-client-secret"  # a demo-only credential of the local ORCID simulator
REPOSITORY_ACCOUNT = ("ioi@repository.demo.example.edu", "demo-repository-password")
QUERY_KEY = "demo-query-key"
OAI_HOST = "repository.demo.example.edu"
TASKS = ("harvest_repository", "update_orcid_ids_in_dspace", "sync_works_to_orcid", "sync_affiliations_to_orcid")


def demo_environment(app_url: str, orcid_url: str, dspace_url: str, database_url: str) -> dict[str, str]:
    """The demo's settings: every outside system is one of the local simulators."""
    return {
        "IOI_DEMO": "true",
        "DATABASE_URL": database_url,
        "INSTITUTION_ABBREVIATION": "DEMO",
        "INSTITUTION_NAME": "Demo University",
        "INSTITUTION_CITY": "Thuwal",
        "INSTITUTION_COUNTRY": "SA",
        "INSTITUTION_ROR_ID": "https://ror.org/01q3tbs38",
        "IR_EMAIL": "repository@demo.example.edu",
        "EMAIL_REPORT_LEVEL": "",
        "ORCID_MEMBER": "true",
        "OAUTH_CLIENT_ID": CLIENT_ID,
        "OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "OAUTH_REDIRECT_URI": f"{app_url}/orcid",
        "OAUTH_AUTHORIZATION_URL": f"{orcid_url}/oauth/authorize",
        "OAUTH_TOKEN_URL": f"{orcid_url}/oauth/token",
        "OAUTH_REVOKE_URL": f"{orcid_url}/oauth/revoke",
        "ORCID_API_URL": f"{orcid_url}/v3.0/",
        "PUBLIC_API_URL": f"{orcid_url}/v3.0/",
        "ORCID_LINK_BASE_URL": f"{orcid_url}/",
        "DSPACE_VERSION": "6",
        "REPOSITORY_BASE_URL": OAI_HOST,
        "REPOSITORY_URL": dspace_url,
        "REPOSITORY_API_URL": f"{dspace_url}/rest/",
        "REPOSITORY_OAI_URL": f"{dspace_url}/oai/request",
        "REPOSITORY_OAI_ID_PREFIX": f"oai:{OAI_HOST}:",
        "REPOSITORY_USER": REPOSITORY_ACCOUNT[0],
        "REPOSITORY_PW": REPOSITORY_ACCOUNT[1],
        "DSPACE_REQUEST_DELAY": "0",
        "EMAIL_SEND_DELAY": "0",
        "QUERY_API_KEYS": QUERY_KEY,
    }


def build_simulators(app_url: str) -> tuple[OrcidSimulator, DSpaceSimulator, list]:
    """Simulators holding the demo institution's ORCID records and repository items."""
    people = demo_people()
    orcid = OrcidSimulator()
    orcid.register_client(
        CLIENT_ID, CLIENT_SECRET, redirect_uris=[f"{app_url}/orcid", f"{app_url}/orcid.php"], name="ORCID at DEMO"
    )
    for person in people:
        if person.orcid:
            orcid.create_researcher(person.given, person.family, person.email, person.orcid)
    dspace = DSpaceSimulator(6, users={REPOSITORY_ACCOUNT[0]: REPOSITORY_ACCOUNT[1]}, oai_host=OAI_HOST)
    authors = [(p.name, p.orcid) for p in people[1:]]
    dspace.load(generate_repository(300, seed=7, people=authors))
    return orcid, dspace, people


def available_tasks() -> dict[str, object]:
    """The task scripts present in tasks/ (each has main(argv) -> int), by name."""
    tasks = {}
    for name in TASKS:
        path = PROJECT_ROOT / "tasks" / f"{name}.py"
        if path.exists():
            spec = importlib.util.spec_from_file_location(f"ioi_demo_task_{name}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            tasks[name] = module
    return tasks


def run_tasks(tasks: dict[str, object]) -> None:
    """One round of the cron tasks; their output is kept out of the demo's console."""
    for name, module in tasks.items():
        try:
            module.main([])
        except SystemExit:
            pass
        except Exception as exc:  # the demo keeps running; the task's report has the details
            print(f"demo: task {name} failed: {exc}", file=sys.stderr)


def run_demo(host: str = "127.0.0.1", port: int = 5000, task_interval: float = 60) -> int:
    """Run the demo until Ctrl-C or SIGTERM; returns an exit status."""
    app_url = f"http://{host}:{port}"
    database = os.environ.get("IOI_DEMO_DATABASE_URL") or f"sqlite:///{PROJECT_ROOT / 'instance' / 'demo.sqlite'}"
    if database.startswith("sqlite:///"):
        Path(database.removeprefix("sqlite:///")).unlink(missing_ok=True)
    orcid, dspace, people = build_simulators(app_url)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    with orcid.serve() as orcid_server, BackgroundServer(dspace) as dspace_server:
        environment = demo_environment(app_url, orcid_server.url, dspace_server.url, database)
        env_file = PROJECT_ROOT / "instance" / "demo.env"
        env_file.parent.mkdir(exist_ok=True)
        env_file.write_text("".join(f"{k}={v}\n" for k, v in environment.items()))
        os.environ.update(environment)
        os.environ["IOI_ENV_FILE"] = str(env_file)
        app = create_app()
        with app.app_context():
            upgrade()
            seed_institution(people, now())
        tasks = available_tasks()
        run_tasks(tasks)
        cron = threading.Thread(target=_cron, args=(tasks, task_interval, stop), daemon=True)
        cron.start()
        with BackgroundServer(app, host=host, port=port) as web:
            _print_banner(web.url, orcid_server.url, dspace_server.url, people, tasks, env_file)
            stop.wait()
        cron.join(timeout=5)
    print("IOI demo stopped.", file=sys.stderr, flush=True)
    return 0


def _cron(tasks: dict[str, object], interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        run_tasks(tasks)


def _print_banner(app_url, orcid_url, dspace_url, people, tasks, env_file) -> None:
    researcher = next(p for p in people if p.title == "Professor")
    student = next(p for p in people if p.title == "PhD Student")
    lines = [
        f"IOI demo running at {app_url}/orcid  (admin area {app_url}/admin)",
        f"  researchers sign in with the demo login, e.g. {researcher.display_name} ({researcher.title}) or "
        f"{student.display_name} ({student.title}); admin: {people[0].display_name}",
        f"  local ORCID: {orcid_url}   local DSpace: {dspace_url}/rest  {dspace_url}/oai/request",
        f"  query API: {example_curl(app_url, QUERY_KEY, 'DEMO', researcher.person_id)}",
        f"  cron tasks every minute: {', '.join(tasks) or 'none yet'}; by hand: "
        f"IOI_ENV_FILE={env_file} .venv/bin/python tasks/<task>.py",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)
