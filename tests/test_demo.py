import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from conftest import free_port

PROJECT = Path(__file__).resolve().parent.parent


def test_demo_command_starts_serves_the_researcher_page_and_stops_cleanly(tmp_path):
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
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/orcid" in banner
        response = None
        for _ in range(50):
            try:
                response = requests.get(f"http://127.0.0.1:{port}/orcid", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert response is not None and response.status_code == 200
        assert "ORCID at DEMO" in response.text
        assert (tmp_path / "demo.sqlite").exists()
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "IOI demo stopped." in err
