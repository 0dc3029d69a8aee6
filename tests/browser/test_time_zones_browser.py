"""Chart axes say UTC and show UTC whatever the browser's time zone, in 24-hour labels; with
JOBDASH_TIMEZONE they say that zone and show its wall clock, and so do table columns."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from tests.actions_helpers import make_failed_jobs
from tests.browser.charts import axis_labels, craft_minutes, tooltip_of_mark, wall_clock_labels
from tests.browser.conftest import wait_for_script_idle
from tests.dashboard_data import add_periodic

TIMEOUT_MS = 30_000
HHMM = re.compile(r"\d\d:\d\d")


def _history(browser: Browser, base_url: str, timezone_id: str):
    context = browser.new_context(timezone_id=timezone_id, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}/history?range=1h")
    wait_for_script_idle(page)
    expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible(timeout=TIMEOUT_MS)
    return context, page


def _check_axis_and_tooltip(page, buckets: list[datetime], zone, zone_name: str) -> None:
    start, end = buckets[0] - timedelta(hours=1), buckets[-1] + timedelta(hours=1)
    expected = wall_clock_labels(start, end, zone)
    throughput = axis_labels(page)[0]
    assert len(throughput) >= 4, throughput
    assert all(HHMM.fullmatch(label) for label in throughput), throughput  # 24-hour labels
    # Ticks are times of the charted hour in that zone (a browser-local axis would be hours off).
    assert set(throughput) <= expected, (throughput, zone_name)
    # A bar's tooltip names one of the crafted buckets, in that zone.
    text = tooltip_of_mark(page, 0, 3)
    assert f"from ({zone_name})" in text
    shown = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text).group(0)
    assert shown in {f"{b.astimezone(zone):%Y-%m-%d %H:%M:%S}" for b in buckets}


@pytest.mark.parametrize("timezone_id", ["America/New_York", "Asia/Kolkata"])
def test_history_axes_show_utc_in_any_browser_zone(
    browser: Browser, streamlit_server, database_url: str, conn: psycopg.Connection, timezone_id
) -> None:
    buckets = craft_minutes(conn, range(45, 14, -1))
    base_url = streamlit_server(database_url, env={"JOBDASH_TIMEZONE": "UTC"})
    context, page = _history(browser, base_url, timezone_id)
    try:
        _check_axis_and_tooltip(page, buckets, UTC, "UTC")
    finally:
        context.close()


def _headers(grid) -> list[str]:
    # The grid is a canvas; its accessible table (hidden) carries the header texts.
    return grid.locator("th[role='columnheader']").all_text_contents()


def _cells(grid) -> list[str]:
    return grid.locator("td[role='gridcell']").all_text_contents()


def test_jobdash_timezone_is_said_and_shown_on_axes_and_columns(
    browser: Browser, streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    buckets = craft_minutes(conn, range(45, 14, -1))
    make_failed_jobs(conn, 1)
    add_periodic(conn, "shop.nightly", "0 3 * * *")
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime.now(UTC)
    next_run = now.replace(hour=3, minute=0, second=0, microsecond=0)
    next_run += timedelta(days=1) if next_run <= now else timedelta()
    base_url = streamlit_server(database_url, env={"JOBDASH_TIMEZONE": "Europe/Berlin"})
    context, page = _history(browser, base_url, "Asia/Kolkata")
    try:
        _check_axis_and_tooltip(page, buckets, berlin, "Europe/Berlin")
        page.goto(f"{base_url}/failed_jobs")
        wait_for_script_idle(page)
        grid = page.locator("[data-testid='stDataFrame']").first
        expect(grid.locator("th[role='columnheader']").first).to_be_attached(timeout=TIMEOUT_MS)
        assert "Failed at (Europe/Berlin)" in _headers(grid)
        # The scheduler's table: the next run of 03:00 UTC said as Berlin's wall clock.
        page.goto(base_url)
        wait_for_script_idle(page)
        expect(page.get_by_text("Times are Europe/Berlin.")).to_be_visible(timeout=TIMEOUT_MS)
        table = page.locator("[data-testid='stDataFrame']").filter(
            has=page.locator("th", has_text="Next run at (Europe/Berlin)")
        )
        expect(table).to_have_count(1, timeout=TIMEOUT_MS)
        wall = f"{next_run.astimezone(berlin):%H:%M}"
        assert any(wall in c and c.endswith("Europe/Berlin") for c in _cells(table)), _cells(table)
    finally:
        context.close()
