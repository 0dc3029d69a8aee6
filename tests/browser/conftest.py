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

import os
from pathlib import Path

import pytest

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
