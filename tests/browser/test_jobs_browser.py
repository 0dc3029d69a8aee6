"""The Jobs page in a real browser: a deep link with filters, a job's detail, cancel through
the confirmation, the audit log showing it."""

from __future__ import annotations

import psycopg
from playwright.sync_api import Page, expect

from tests.actions_helpers import job_status
from tests.browser.conftest import wait_for_script_idle
from tests.dashboard_data import add_job

TIMEOUT_MS = 30_000


def test_filtered_jobs_open_a_job_cancel_it_and_see_it_audited(
    page: Page, streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    job = add_job(conn, queue="emails", args={"note": "<img src=x onerror=window.__pwned=1>"})
    add_job(conn, queue="reports")
    base_url = streamlit_server(database_url)
    page.set_viewport_size({"width": 1400, "height": 1000})

    page.goto(f"{base_url}/jobs?state=ready&queue=emails")
    wait_for_script_idle(page)
    expect(page.get_by_text("1 job matches the filter")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_role("button", name="Ready · 2")).to_be_visible()

    page.goto(f"{base_url}/jobs?job={job}")
    wait_for_script_idle(page)
    expect(page.get_by_role("heading", name=f"Job {job}")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("Why isn't it running?", exact=False)).to_be_visible()
    page.get_by_role("button", name="Cancel", exact=True).click()
    dialog = page.locator("[data-testid='stDialog']")
    expect(dialog.get_by_text(f"Cancel exactly 1 job: {job}")).to_be_visible(timeout=TIMEOUT_MS)
    assert job_status(conn, job) == "todo"
    dialog.get_by_role("button", name="Cancel 1 job").click()
    toast = page.locator("[data-testid='stToast']").filter(has_text="Cancelled 1 job")
    expect(toast).to_be_visible(timeout=TIMEOUT_MS)
    assert job_status(conn, job) == "cancelled"
    assert page.evaluate("window.__pwned") is None

    page.goto(f"{base_url}/audit?action=cancel")
    wait_for_script_idle(page)
    expect(page.get_by_text("1 actions")).to_be_visible(timeout=TIMEOUT_MS)
    assert conn.execute("SELECT action, actor, job_ids FROM jobdash_audit_log").fetchall() == [
        ("cancel", "dashboard", [job])
    ]
    assert page.locator("[data-testid='stException']").count() == 0
