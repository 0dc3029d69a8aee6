"""Job links open the job with one click, in the same tab: the dashboard's Failed Jobs panel,
the failed-jobs table (keeping its filter for the way back), History's error groups."""

from __future__ import annotations

import psycopg
from playwright.sync_api import Locator, Page, expect

from tests.actions_helpers import make_failed_jobs
from tests.browser.conftest import wait_for_script_idle

TIMEOUT_MS = 30_000
ROW_PX, HEADER_PX = 35, 35


def click_cell(page: Page, grid: Locator, row: int, x_px: float) -> None:
    """One click in a grid (a canvas) at `x_px` from its left, on data row `row` (0 = first)."""
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x_px, box["y"] + HEADER_PX + ROW_PX * row + ROW_PX / 2)


def click_until(page: Page, grid: Locator, row: int, x_px: float, shown: Locator) -> None:
    """Click the cell until `shown` appears: a grid that has just been drawn may not take
    the first click yet (it still counts as one click for the operator: nothing else
    happens on a click that does not land)."""
    for _ in range(3):
        wait_for_script_idle(page)
        click_cell(page, grid, row, x_px)
        try:
            expect(shown).to_be_visible(timeout=10_000)
            return
        except AssertionError:
            continue
    expect(shown).to_be_visible(timeout=1)


def grid_with_header(page: Page, header: str) -> Locator:
    grid = page.locator("[data-testid='stDataFrame']").filter(
        has=page.locator("th[role='columnheader']", has_text=header)
    )
    expect(grid).to_have_count(1, timeout=TIMEOUT_MS)
    return grid


def first_cell(grid: Locator, column: int) -> str:
    return grid.locator(f"[data-testid='glide-cell-{column}-0']").text_content() or ""


def test_job_links_open_the_job_in_one_click_in_the_same_tab(
    page: Page, streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    make_failed_jobs(conn, 2, queue="billing", message="first")
    newest = make_failed_jobs(conn, 1, queue="billing", message="newest")[0]
    base_url = streamlit_server(database_url)
    page.set_viewport_size({"width": 1400, "height": 900})

    # Dashboard → the job.
    page.goto(base_url)
    wait_for_script_idle(page)
    panel = grid_with_header(page, "Attempts")
    assert first_cell(panel, 0) == f"#{newest}"
    click_cell(page, panel, 0, 20)
    page.wait_for_url(f"{base_url}/jobs?job={newest}", timeout=TIMEOUT_MS)  # the one job page
    heading = page.get_by_role("heading", name=f"Job {newest}")
    expect(heading).to_be_visible(timeout=TIMEOUT_MS)
    assert len(page.context.pages) == 1

    # The failed-jobs table, filtered → the job, and back to the same filter.
    page.goto(f"{base_url}/failed_jobs?queue=billing")
    wait_for_script_idle(page)
    table = grid_with_header(page, "Failed at (UTC)")
    assert first_cell(table, 0) == f"#{newest}"  # the job first, then the tick
    click_until(page, table, 0, 20, heading)
    assert "queue=billing" in page.url and f"job={newest}" in page.url
    page.get_by_role("button", name="Failed jobs").click()
    expect(page.get_by_text("3 failed jobs match the filter")).to_be_visible(timeout=TIMEOUT_MS)
    assert len(page.context.pages) == 1


def test_error_groups_open_their_failed_jobs(
    page: Page, streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    make_failed_jobs(conn, 2, task="shop.charge_card", exception_type="PaymentDeclined")
    make_failed_jobs(conn, 1, task="shop.refund_order", exception_type="KeyError")
    conn.execute(
        """
        insert into jobdash_error_groups_minute (bucket, queue_name, task_name, exception_type,
            failures, first_seen, last_seen, example_message)
        values (date_trunc('minute', now()), 'billing', 'shop.charge_card', 'PaymentDeclined',
                2, now(), now(), 'declined'),
               (date_trunc('minute', now()), 'billing', 'shop.refund_order', 'KeyError',
                1, now(), now(), 'gone')
        """
    )
    base_url = streamlit_server(database_url)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{base_url}/history?range=1h")
    wait_for_script_idle(page)
    groups = grid_with_header(page, "Share of failures")
    assert first_cell(groups, 1) == "shop.charge_card"  # most failures first
    assert first_cell(groups, 0) == "Open"  # the "Failed jobs" column comes first
    click_cell(page, groups, 1, 20)
    page.wait_for_url("**/failed_jobs?**", timeout=TIMEOUT_MS)
    assert "task=shop.refund_order" in page.url and "exception_type=KeyError" in page.url
    expect(page.get_by_text("1 failed jobs match the filter")).to_be_visible(timeout=TIMEOUT_MS)
    assert len(page.context.pages) == 1
