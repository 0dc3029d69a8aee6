"""Reading what Vega drew (Streamlit renders Altair charts as SVG), and crafted history rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from playwright.sync_api import Page

CHART = "[data-testid='stVegaLiteChart']"

# The tick labels of each chart's axis whose aria-label starts with `axis` ("X-axis" …).
_AXIS_LABELS_JS = """
([selector, axis]) => [...document.querySelectorAll(selector + " svg")].map(svg =>
    [...svg.querySelectorAll("g.role-axis")]
        .filter(g => (g.getAttribute("aria-label") || "").startsWith(axis))
        .flatMap(g => [...g.querySelectorAll("g.role-axis-label text")].map(t => t.textContent)))
"""


def axis_labels(page: Page, axis: str = "X-axis") -> list[list[str]]:
    """Per chart on the page, the tick labels of that axis, as drawn."""
    return page.evaluate(_AXIS_LABELS_JS, [CHART, axis])


def tooltip_of_mark(page: Page, chart_index: int, mark_index: int) -> str:
    """Hover one mark of a chart and return the tooltip's text."""
    chart = page.locator(CHART).nth(chart_index)
    chart.scroll_into_view_if_needed()
    chart.locator("g.role-mark path").nth(mark_index).hover(force=True)
    tooltip = page.locator("#vg-tooltip-element")
    tooltip.wait_for(state="visible", timeout=10_000)
    return tooltip.inner_text()


def craft_minutes(
    conn: psycopg.Connection, minutes_ago: range, succeeded: int = 10
) -> list[datetime]:
    """Per-queue minute rows `minutes_ago` minutes before now (whole minutes, UTC), and a
    rollup state that says history is recorded: the History page draws exactly these."""
    (now,) = conn.execute("select date_trunc('minute', now())").fetchone()
    buckets = [now.astimezone(UTC) - timedelta(minutes=m) for m in minutes_ago]
    for bucket in buckets:
        for table, extra in (
            ("jobdash_history_queue_minute", ""),
            ("jobdash_history_minute", ", task_name"),
        ):
            conn.execute(
                f"insert into {table} (bucket, queue_name{extra}, started, succeeded)"  # noqa: S608
                f" values (%s, 'emails'{', %s' if extra else ''}, %s, %s)",
                (bucket, *(["shop.send_welcome_email"] if extra else []), succeeded, succeeded),
            )
    conn.execute("update jobdash_rollup_state set last_run_at = now()")
    return buckets


def wall_clock_labels(start: datetime, end: datetime, zone) -> set[str]:
    """Every HH:MM of [start, end] in `zone`: any tick of a chart of that range is one."""
    labels, at = set(), start.replace(second=0, microsecond=0)
    while at <= end:
        labels.add(f"{at.astimezone(zone):%H:%M}")
        at += timedelta(minutes=1)
    return labels
