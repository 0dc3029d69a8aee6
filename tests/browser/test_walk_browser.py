"""A walk through every page: no deprecation warning in the server's log, no request leaving
127.0.0.1, no chart warning ("Infinite extent") or lone "0.000000" tick, empty charts say so."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import psycopg
from playwright.sync_api import Page, expect

from jobdash.jobs.demo.history import seed_demo_history
from tests.actions_helpers import make_failed_jobs
from tests.browser.charts import CHART, axis_labels
from tests.browser.conftest import wait_for_script_idle
from tests.dashboard_data import add_periodic, add_worker

TIMEOUT_MS = 30_000
LOCAL_SCHEMES = {"data", "blob", "about"}


def walk_paths(job_id: int) -> list[str]:
    return [
        "",
        "failed_jobs",
        f"failed_jobs?job={job_id}",
        "failed_jobs?view=deleted",
        *(f"history?range={r}" for r in ("1h", "6h", "24h", "7d", "30d", "90d")),
        "audit",
    ]


def _walk(page: Page, base_url: str, paths: list[str]) -> tuple[list[str], list[str]]:
    """Visit each path; the URLs requested and the console messages on the way."""
    requests: list[str] = []
    console: list[str] = []
    visiting = [""]
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: console.append(f"/{visiting[0]}: {message.text}"))
    page.set_viewport_size({"width": 1400, "height": 900})
    for path in paths:
        visiting[0] = path
        page.goto(f"{base_url}/{path}")
        wait_for_script_idle(page)
        expect(page.locator("h1").first).to_be_visible(timeout=TIMEOUT_MS)
        assert page.locator("[data-testid='stException']").count() == 0, path
        page.wait_for_timeout(500)  # charts draw after the run ends
        for labels in axis_labels(page, "Y-axis"):
            assert "0.000000" not in labels, (path, labels)
    return requests, console


def _server_log(tmp_path: Path, base_url: str) -> str:
    return (tmp_path / f"streamlit-{urlparse(base_url).port}.log").read_text()


def test_a_walk_of_every_page_warns_of_nothing_and_stays_local(
    page: Page, streamlit_server, database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    seed_demo_history(conn, hours=6, seed=3)
    [job_id, *_] = make_failed_jobs(conn, 3, task="shop.charge_card")
    add_worker(conn, "web-1", 4101)
    add_periodic(conn, "shop.cleanup_sessions", "*/5 * * * *")
    add_periodic(conn, "shop.heartbeat_ping", "* * * * * */15")
    base_url = streamlit_server(database_url)

    requests, console = _walk(page, base_url, walk_paths(job_id))

    log = _server_log(tmp_path, base_url)
    deprecations = [line for line in log.splitlines() if "deprecat" in line.lower()]
    assert not deprecations, deprecations
    assert not [m for m in console if "deprecat" in m.lower() or "Infinite extent" in m]
    remote = {
        url for url in requests
        if urlparse(url).scheme not in LOCAL_SCHEMES and urlparse(url).hostname != "127.0.0.1"
    }  # fmt: skip
    assert not remote, remote
    assert any("/_stcore/" in url or "/static/" in url for url in requests)  # assets were seen


def test_empty_charts_say_so(page: Page, streamlit_server, database_url: str) -> None:
    base_url = streamlit_server(database_url)
    _requests, console = _walk(page, base_url, ["history?range=1h", "history?range=7d", ""])
    page.goto(f"{base_url}/history?range=24h")
    wait_for_script_idle(page)
    expect(page.get_by_text("No data in this range.")).to_have_count(5, timeout=TIMEOUT_MS)
    assert page.locator(CHART).count() == 0
    assert not [m for m in console if "Infinite extent" in m]
