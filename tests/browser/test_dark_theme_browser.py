"""Every page and chart readable in Streamlit's dark theme: text against the page background
has WCAG contrast, chart labels and marks are not dark on dark."""

from __future__ import annotations

import re

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from jobdash.jobs.demo.history import seed_demo_history
from tests.actions_helpers import make_failed_jobs
from tests.browser.charts import CHART
from tests.browser.conftest import wait_for_script_idle
from tests.dashboard_data import add_periodic, add_worker

TIMEOUT_MS = 30_000
PAGES = ["", "failed_jobs", "history?range=6h", "audit"]

# Colours as the browser computed them: the page, the text of key elements, and per chart
# its axis labels and the fill/stroke of its marks.
_COLOURS_JS = """
(chartSelector) => {
  const style = (el, prop) => getComputedStyle(el)[prop];
  const texts = [...document.querySelectorAll(
      "h1, h2, h3, [data-testid='stMetricValue'], [data-testid='stMetricLabel'], " +
      "[data-testid='stCaptionContainer'], [data-testid='stMarkdownContainer'] p, label")]
    .filter(el => el.offsetParent !== null && el.textContent.trim())
    .map(el => [el.textContent.trim().slice(0, 30), style(el, "color"),
                !!el.closest("label, button, [data-testid='stButtonGroup']")]);
  const charts = [...document.querySelectorAll(chartSelector + " svg")].map(svg => ({
    labels: [...svg.querySelectorAll("g.role-axis-label text, g.role-axis-title text")]
      .map(t => style(t, "fill")),
    marks: [...svg.querySelectorAll("g.role-mark > *")]
      .flatMap(m => [style(m, "fill"), style(m, "stroke")])
      .filter(c => c && c !== "none" && !c.startsWith("rgba(0, 0, 0, 0)")),
  }));
  return {background: style(document.querySelector("[data-testid='stApp']"), "backgroundColor"),
          texts, charts};
}
"""


def _rgb(css: str) -> tuple[float, float, float]:
    values = [float(v) for v in re.findall(r"[\d.]+", css)[:3]]
    return values[0], values[1], values[2]


def luminance(css: str) -> float:
    def channel(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in _rgb(css))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("how", ["theme.base=dark", "prefers-color-scheme"])
def test_every_page_reads_in_the_dark_theme(
    browser: Browser, streamlit_server, database_url: str, conn: psycopg.Connection, how: str
) -> None:
    seed_demo_history(conn, hours=6, seed=2)
    make_failed_jobs(conn, 2, task="shop.charge_card")
    add_worker(conn, "web-1", 4101)
    add_periodic(conn, "shop.cleanup_sessions", "*/5 * * * *")
    env = {"STREAMLIT_THEME_BASE": "dark"} if how == "theme.base=dark" else {}
    base_url = streamlit_server(database_url, env=env)
    context = browser.new_context(color_scheme="dark", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        for path in PAGES if how == "theme.base=dark" else PAGES[:1]:
            page.goto(f"{base_url}/{path}")
            wait_for_script_idle(page)
            expect(page.locator("h1").first).to_be_visible(timeout=TIMEOUT_MS)
            if "history" in path or not path:
                expect(page.locator(CHART).first).to_be_visible(timeout=TIMEOUT_MS)
            colours = page.evaluate(_COLOURS_JS, CHART)
            background = colours["background"]
            assert luminance(background) < 0.05, (path, background)  # the dark theme is on
            # WCAG AA: 4.5 for text, 3 for the text of controls (Streamlit's own primary red
            # on a selected segment is 4.0).
            low = [
                (t, c) for t, c, control in colours["texts"]
                if contrast(c, background) < (3 if control else 4.5)
            ]  # fmt: skip
            assert colours["texts"] and not low, (path, low)
            for chart in colours["charts"]:
                assert chart["labels"] and chart["marks"], path
                assert min(contrast(c, background) for c in chart["labels"]) >= 4.5, path
                # Marks may be muted (a band at 35 % opacity) but never dark on dark.
                dark = [c for c in chart["marks"] if contrast(c, background) < 2]
                assert not dark, (path, dark)
    finally:
        context.close()
