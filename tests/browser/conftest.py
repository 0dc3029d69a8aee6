"""Real-browser fixtures: Playwright driving Debian's /usr/bin/chromium against a real Streamlit.

Reuse them from any browser test:
- `streamlit_server(database_url, env=None, script=None) -> base_url` starts
  `streamlit run` of the dashboard server (or `script`) on a free port with
  JOBDASH_DATABASE_URL set (plus `env`), waits for /_stcore/health == "ok" and stops the
  server after the test.
- `wait_for_script_idle(page)` waits until the app's current run has finished.
Every test in this folder is marked `browser`, and is skipped when /usr/bin/chromium is
missing (unless $CI is set: then it fails). Never `playwright install`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from jobdash.app.web import SERVER_SCRIPT

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]

STARTUP_TIMEOUT_S = 60
IDLE_SELECTOR = "[data-testid='stApp'][data-test-script-state='notRunning']"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            # One xdist worker runs them all, one at a time (with --dist loadgroup): two
            # Streamlit servers and two Chromiums at once on two cores make clicks time out.
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session", autouse=True)
def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(
            f"{CHROMIUM} is missing (install Debian's chromium); browser tests must run in CI"
        )
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium to run browser tests")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict, _require_chromium: None) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


def _free_port() -> int:
    # The OS picks an unused ephemeral port: parallel test workers don't pick the same one.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listens_on(pid: int, port: int) -> bool:
    """Whether `pid` itself listens on `port` (not some other server that answered first)."""
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
            # Unknown /_stcore paths answer 200 with index.html: check the body.
            return response.status == 200 and response.read().strip() == b"ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def streamlit_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Factory: start a Streamlit server for `database_url`; returns its base URL."""
    processes: list[subprocess.Popen] = []

    def start(
        database_url: str, env: dict[str, str] | None = None, script: Path | str | None = None
    ) -> str:
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        log_path = tmp_path / f"streamlit-{port}.log"
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(script or SERVER_SCRIPT),
            f"--server.port={port}",
            "--server.address=127.0.0.1",
            "--server.headless=true",
            "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false",
        ]
        full_env = {**os.environ, "JOBDASH_DATABASE_URL": database_url, **(env or {})}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT
            )
        processes.append(process)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not (_healthy(base_url) and _listens_on(process.pid, port)):
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit not healthy after {STARTUP_TIMEOUT_S} s")
            time.sleep(0.2)  # polling the health endpoint, not synchronising on time
        return base_url

    yield start
    for process in processes:
        _stop(process)


def wait_for_script_idle(page, timeout_ms: float = 30_000) -> None:
    page.wait_for_selector(IDLE_SELECTOR, timeout=timeout_ms)
