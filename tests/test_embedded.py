"""The embedded PostgreSQL: start, reuse by a second process, recovery after its owner is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from jobdash.core.embedded import prune_dead_handles

# A process that starts (or joins) the server, prints its URL, and holds it until stdin closes.
HOLDER = """
import sys
from pathlib import Path
from jobdash.core.embedded import start_embedded_server
print(start_embedded_server(Path(sys.argv[1])), flush=True)
sys.stdin.read()
"""


def _hold(pgdata: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(pgdata)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "LC_ALL"},
    )
    url = process.stdout.readline().strip()
    assert url.startswith("postgresql://"), "holder did not start the server"
    return process, url


def _release(process: subprocess.Popen) -> None:
    process.stdin.close()
    assert process.wait(timeout=30) == 0


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("select 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def _wait_until_down(url: str, timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _answers(url):
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def pgdata(tmp_path: Path) -> Path:
    # Inside the test's own folder, as the README asks of real deployments (project folder).
    return tmp_path / "jobdash" / "pgdata"


def test_second_process_reuses_the_server_and_last_one_out_stops_it(pgdata):
    pgdata.parent.mkdir(parents=True)
    first, url = _hold(pgdata)
    second, second_url = _hold(pgdata)
    assert second_url == url
    assert _answers(url)

    _release(first)
    assert _answers(url), "server stopped although a second process still uses it"

    _release(second)
    assert _wait_until_down(url), "server kept running after the last process exited"


def test_recovers_after_its_owner_is_killed(pgdata):
    pgdata.parent.mkdir(parents=True)
    owner, url = _hold(pgdata)
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait(timeout=10)

    survivor, survivor_url = _hold(pgdata)
    assert survivor_url == url
    assert _answers(url)
    assert prune_dead_handles(pgdata) == [survivor.pid]

    _release(survivor)
    assert _wait_until_down(url), "a killed owner's pid kept the server running forever"
