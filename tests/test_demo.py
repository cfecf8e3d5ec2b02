import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from conftest import free_port

PROJECT = Path(__file__).resolve().parent.parent


def wait_for(url: str) -> requests.Response:
    for _ in range(100):
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_demo_command_starts_everything_serves_the_pages_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {**os.environ, "IOI_DEMO_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite'}", "PYTHONUNBUFFERED": "1"}
    env.pop("SECRET_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "ioi", "demo", "--port", str(port)],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = "".join(process.stdout.readline() for _ in range(6))
        assert f"http://127.0.0.1:{port}/orcid" in banner, banner
        page = wait_for(f"http://127.0.0.1:{port}/orcid")
        assert page.status_code == 200 and "DEMO" in page.text
        orcid_url = re.search(r"local ORCID: (\S+)", banner).group(1)
        dspace_url = re.search(r"local DSpace: (\S+)/rest", banner).group(1)
        assert requests.get(f"{dspace_url}/rest/status", timeout=5).status_code == 200
        consent = requests.get(
            f"{orcid_url}/oauth/authorize",
            params={
                "client_id": "APP-DEMO000000000001",
                "response_type": "code",
                "scope": "/authenticate",
                "redirect_uri": f"http://127.0.0.1:{port}/orcid",
            },
            timeout=5,
        )
        assert consent.status_code == 200
        oai = requests.get(
            f"{dspace_url}/oai/request", params={"verb": "ListIdentifiers", "metadataPrefix": "xoai"}, timeout=5
        )
        assert 'completeListSize="300"' in oai.text and "oai:repository.demo.example.edu:10754/" in oai.text
        # the printed curl line works: the startup harvest has put the professor's works in IOI
        curl = re.search(r"query API: (curl .*)$", banner, re.MULTILINE).group(1)
        key = re.search(r"Bearer ([^']+)'", curl).group(1)
        url = re.search(r"'(http[^']+)'$", curl).group(1)
        works = requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert works.status_code == 200 and len(works.json()) > 0 and works.json()[0]["Title"]
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "IOI demo stopped." in err
