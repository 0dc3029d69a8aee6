"""The dashboard in a real browser: panels appear and refresh on their own."""

from __future__ import annotations

import psycopg
from playwright.sync_api import Page, expect

from tests.browser.conftest import wait_for_script_idle
from tests.dashboard_data import add_error, add_job, add_worker

PANEL_TITLES = ["Queue Statistics", "Worker Health", "Scheduled Tasks Timeline", "Failed Jobs"]
HOSTILE_IMG = "<img src=x onerror=window.__pwned=1>"


def metric_value(page: Page, label: str):
    metric = page.locator("[data-testid='stMetric']").filter(
        has=page.locator("[data-testid='stMetricLabel']", has_text=label)
    )
    return metric.locator("[data-testid='stMetricValue']")


def test_panels_load_and_refresh_by_themselves(
    page: Page, streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    add_job(conn, queue="emails")
    failed = add_job(conn, task=HOSTILE_IMG, final_status="failed")
    add_error(conn, failed, "ValueError", HOSTILE_IMG)
    add_worker(conn, HOSTILE_IMG, 7)
    base_url = streamlit_server(
        database_url, env={"JOBDASH_REFRESH_QUEUE_S": "1", "JOBDASH_REFRESH_FAILED_S": "1"}
    )

    page.goto(base_url)
    wait_for_script_idle(page)
    for title in PANEL_TITLES:
        expect(page.get_by_role("heading", name=title)).to_be_visible(timeout=30_000)
    queue_size = metric_value(page, "Current queue size")
    expect(queue_size).to_have_text("1", timeout=30_000)
    expect(metric_value(page, "Failed jobs")).to_have_text("1")
    expect(page.get_by_text("updated", exact=False).first).to_be_visible()

    # The data changes in the database; nobody touches the page.
    add_job(conn, queue="emails")
    add_job(conn, queue="emails")
    add_job(conn, final_status="failed")
    expect(queue_size).to_have_text("3", timeout=20_000)
    expect(metric_value(page, "Failed jobs")).to_have_text("2", timeout=20_000)

    # Hostile job data stayed text: no element was created from it, no script ran.
    expect(page.get_by_text(f"{HOSTILE_IMG}:7 (w)")).to_be_visible()
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.locator("[data-testid='stException']").count() == 0


def test_database_down_shows_messages_not_tracebacks(page: Page, streamlit_server) -> None:
    base_url = streamlit_server("postgresql://postgres@127.0.0.1:1/nothing")
    page.goto(base_url)
    wait_for_script_idle(page)
    for title in PANEL_TITLES:
        expect(page.get_by_text(f"{title} unavailable", exact=False)).to_be_visible(
            timeout=30_000
        )
    assert page.locator("[data-testid='stException']").count() == 0
