"""Turning values into safe, readable text for the dashboard (pure: no Streamlit here).

Job data (args, errors, task and queue names) reaches the page only as plain text: table
cells, `st.text`, `st.code`. When a message must go through a markdown element (alerts,
captions), `escape_markdown` neutralises every markup character first.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, tzinfo
from typing import Any

import regex

PAYLOAD_PREVIEW_CHARS = 100
ELLIPSIS = "…"
# One user-perceived character (a flag, a ZWJ emoji, a letter with its accents).
_GRAPHEME = regex.compile(r"\X")

# Characters that start markup in CommonMark, GFM or Streamlit's extras (`:red[...]`,
# `:material/x:`, `:emoji:`, `$math$`); CommonMark lets a backslash escape any of them.
_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-!|<>~$:&])")


def escape_markdown(text: str) -> str:
    """`text` as markdown that renders literally (no links, images, emphasis, HTML, math)."""
    one_line = " ".join(str(text).split())
    return _MARKUP.sub(r"\\\1", one_line)


def format_duration(seconds: float | None) -> str:
    """Compact duration: "0.4 s", "12 s", "3 min 5 s", "2 h 7 min", "3 d 4 h"; "—" if unknown."""
    if seconds is None:
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def format_milliseconds(ms: float | None) -> str:
    """An execution time: "850 ms", "2.3 s", "4 min 2 s"; "—" when unknown."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return format_duration(ms / 1000)


def format_count(value: int | None) -> str:
    """A count with thousands separators (every count the dashboard shows is exact)."""
    if value is None:
        return "—"
    return f"{value:,}"


def format_capped(value: int, capped: bool, estimate: int | None = None) -> str:
    """A count that may have stopped at a cap: exact when not `capped`; else the estimate
    ("≈ 12,400") or the lower bound ("1,000+")."""
    if not capped:
        return f"{value:,}"
    if estimate is not None:
        return f"≈ {estimate:,}"
    return f"{value:,}+"


def format_percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} %"


def format_window(window_seconds: int) -> str:
    """The label of a statistics window: "last hour", "last 15 min", "last 24 hours"."""
    if window_seconds == 3600:
        return "last hour"
    if window_seconds % 3600 == 0:
        return f"last {window_seconds // 3600} hours"
    if window_seconds % 60 == 0:
        return f"last {window_seconds // 60} min"
    return f"last {window_seconds} s"


def format_interval(seconds: float) -> str:
    """A refresh interval: "5 s", "1.5 s", "2 min"."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def freshness_caption(
    loaded_at: float | None, now: float, every_s: float, paused: bool = False
) -> str:
    """ "updated N s ago · every N s" (the status line of a panel); when live updates are
    paused, the time of the data instead: "data of 12:03:04 UTC · live updates paused"."""
    every = format_interval(every_s)
    if loaded_at is None:
        return "not loaded yet" + (" · live updates paused" if paused else f" · every {every}")
    if paused:
        return f"data of {clock_utc(loaded_at)} UTC · live updates paused"
    age = max(0, round(now - loaded_at))
    return f"updated {age} s ago · every {every}"


def clock_utc(epoch_s: float) -> str:
    """HH:MM:SS in UTC."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%H:%M:%S")


def zone_label(tz: tzinfo) -> str:
    """How a time zone is named next to times: "UTC", "Europe/Berlin"."""
    return getattr(tz, "key", None) or str(tz)


def format_timestamp(value: datetime | None, tz: tzinfo = UTC) -> str:
    """ "2024-05-01 12:03:04 UTC" (in `tz`, named), or "—"."""
    if value is None:
        return "—"
    return f"{value.astimezone(tz):%Y-%m-%d %H:%M:%S} {zone_label(tz)}"


def format_clock(value: datetime, tz: tzinfo = UTC, today: datetime | None = None) -> str:
    """ "HH:MM:SS UTC" for a time of today (in `tz`), "Dec 01, 14:05 UTC" otherwise."""
    local = value.astimezone(tz)
    now = (today or datetime.now(UTC)).astimezone(tz)
    if local.date() == now.date():
        return f"{local:%H:%M:%S} {zone_label(tz)}"
    return f"{local:%b %d, %H:%M} {zone_label(tz)}"


def cut_text(text: str, limit: int = PAYLOAD_PREVIEW_CHARS) -> str:
    """At most `limit` characters; when cut, ends in "…" and never splits a visible character."""
    if len(text) <= limit:
        return text
    budget = limit - len(ELLIPSIS)
    end = 0
    for grapheme in _GRAPHEME.finditer(text):  # lazy: stops at the budget
        if grapheme.end() > budget:
            break
        end = grapheme.end()
    return text[:end] + ELLIPSIS


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def payload_preview(args: Any, limit: int = PAYLOAD_PREVIEW_CHARS) -> str:
    """The job's args as compact JSON, cut to `limit` characters."""
    return cut_text(compact_json(args), limit)


def counted(n: int, unit: str) -> str:
    """ "1 live worker", "1,234 live workers": a count and its unit (plural with an s)."""
    return f"{n:,} {unit}" if n == 1 else f"{n:,} {unit}s"


def _span(seconds: float) -> str:
    """Magnitude in words: "less than 1 minute", "7 min", "5 hours, 30 min", "2 days, 3 hours"."""
    total = int(seconds)
    if total < 60:
        return "less than 1 minute"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return counted(hours, "hour") + (f", {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return counted(days, "day") + (f", {counted(hours, 'hour')}" if hours else "")


def relative_time(when: datetime, now: datetime) -> str:
    """ "in 7 min" for the future (and for exactly now), "overdue by 3 min" for the past."""
    delta = (when - now).total_seconds()
    if delta < 0:
        return f"overdue by {_span(-delta)}"
    return f"in {_span(delta)}"
