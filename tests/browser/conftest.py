"""Real-browser fixtures: Playwright driving Debian's /usr/bin/chromium against a real Streamlit.

Reuse them from any browser test:
- `streamlit_server(database_url, env=None, script=None) -> base_url` starts
  `streamlit run` of the dashboard server (or `script`) as `jobdash serve` does, on a free
  port with JOBDASH_DATABASE_URL set (plus `env`), waits for /_stcore/health == "ok" and
  stops the server after the test (tests/streamlit_process.py).
- `wait_for_script_idle(page)` waits until the app's current run has finished.
Every test in this folder is marked `browser`, and is skipped when /usr/bin/chromium is
missing (unless $CI is set: then it fails). Never `playwright install`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.streamlit_process import free_port, stop
from tests.streamlit_process import streamlit_server as streamlit_server

CHROMIUM = Path("/usr/bin/chromium")

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


def wait_for_script_idle(page, timeout_ms: float = 30_000) -> None:
    page.wait_for_selector(IDLE_SELECTOR, timeout=timeout_ms)


# Users of the local OpenID Connect provider (oidc-provider-mock) the sign-in tests start.
PROVIDER_USERS = [
    {"sub": "ops", "email": "ops@acme.com", "name": "Ops", "groups": ["oncall"]},
    {"sub": "eve", "email": "eve@evil.test", "name": "Eve"},
    {"sub": "vic", "email": "vic@acme.com", "name": "Vic"},
    {"sub": "ada", "email": "ada@acme.com", "name": "Ada"},
    {"sub": "someone", "email": "someone@elsewhere.com", "name": "Someone"},
]


@pytest.fixture
def oidc_provider(tmp_path: Path) -> Iterator[str]:
    """oidc-provider-mock on a free 127.0.0.1 port; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port)]
    for claims in PROVIDER_USERS:
        command += ["--user-claims", json.dumps(claims)]
    log = (tmp_path / "oidc.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/.well-known/openid-configuration", timeout=2):
                break
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                raise RuntimeError((tmp_path / "oidc.log").read_text()[-2000:]) from None
            time.sleep(0.1)  # polling the provider's metadata, not synchronising on time
    yield base_url
    stop(process)
    log.close()
