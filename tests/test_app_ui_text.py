"""Pure text helpers of the dashboard: escaping and formatting."""

from __future__ import annotations

import pytest

from jobdash.app.rules.text import (
    clock_utc,
    escape_markdown,
    format_count,
    format_duration,
    format_interval,
    format_milliseconds,
    format_percent,
    format_window,
    freshness_caption,
)
from jobdash.core.errors import one_line
from tests.hostile import HOSTILE


@pytest.mark.parametrize("text", HOSTILE["html_and_script"] + HOSTILE["markdown"])
def test_escape_markdown_leaves_no_unescaped_markup(text: str) -> None:
    escaped = escape_markdown(text)
    # Every markup character is preceded by a backslash.
    for i, char in enumerate(escaped):
        if char in "<>[]()*_`#$:!&":
            assert escaped[i - 1] == "\\", (text, escaped)
    # Removing the escapes gives the original (whitespace folded to one line).
    assert escaped.replace("\\", "") == " ".join(text.split()).replace("\\", "")


def test_escape_markdown_folds_lines() -> None:
    assert "\n" not in escape_markdown("a\n# heading\r\nb")


def test_one_line_takes_first_line_and_cuts() -> None:
    assert one_line("\n  first  \nsecond") == "first"
    assert one_line("x" * 500, limit=10) == "x" * 9 + "…"
    assert one_line("") == ""


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0, "0.0 s"),
        (9.94, "9.9 s"),
        (12.7, "12 s"),
        (60, "1 min"),
        (185, "3 min 5 s"),
        (3600, "1 h"),
        (3600 * 2 + 7 * 60 + 5, "2 h 7 min"),
        (86400 * 3 + 3600 * 4, "3 d 4 h"),
        (-5, "0.0 s"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_milliseconds() -> None:
    assert format_milliseconds(None) == "—"
    assert format_milliseconds(850.4) == "850 ms"
    assert format_milliseconds(2300) == "2.3 s"
    assert format_milliseconds(242_000) == "4 min 2 s"


def test_counts_percent_window_interval() -> None:
    assert format_count(1234567) == "1,234,567"
    assert format_count(None) == "—"
    assert format_percent(None) == "—"
    assert format_percent(95.04) == "95.0 %"
    assert format_window(3600) == "last hour"
    assert format_window(900) == "last 15 min"
    assert format_window(86400) == "last 24 hours"
    assert format_interval(5) == "5 s"
    assert format_interval(0.5) == "0.5 s"
    assert format_interval(120) == "2 min"


def test_freshness_caption() -> None:
    assert freshness_caption(100.0, 103.4, 5) == "updated 3 s ago · every 5 s"
    assert freshness_caption(None, 103.4, 10) == "not loaded yet · every 10 s"
    # A clock skew never shows a negative age.
    assert freshness_caption(105.0, 103.0, 5) == "updated 0 s ago · every 5 s"


def test_clock_utc() -> None:
    assert clock_utc(3600 * 13 + 62) == "13:01:02"
