"""The one builder of the dashboard's time charts: the display time zone on the axis whatever
the browser's (Vega draws the browser's local time unless told otherwise), 24-hour labels, dates
when a range spans days.

Vega knows only "local" and "utc": times are turned into the display zone's wall clock and drawn
on a UTC scale, so Europe/Berlin's 14:00 is drawn as 14:00 for every viewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import altair as alt
import pandas as pd

from jobdash.app.rules.text import zone_label

TIME_FIELD = "bucket_start"
# What a chart with nothing to draw says instead (an empty Vega chart warns "Infinite extent").
NO_DATA = "No data in this range."


def has_data(frame: pd.DataFrame, y: str) -> bool:
    """Whether a chart of `y` would draw anything (a frame of only missing values would not)."""
    return not frame.empty and y in frame and bool(frame[y].notna().any())


def wall_clock(value: datetime, zone: tzinfo) -> str:
    """The zone's wall-clock time as an ISO string Vega reads as UTC."""
    return value.astimezone(zone).replace(tzinfo=None).isoformat() + "Z"


def wall_clock_frame(frame: pd.DataFrame, fields: Sequence[str], zone: tzinfo) -> pd.DataFrame:
    shifted = frame.copy()
    for field in fields:
        times = pd.to_datetime(shifted[field], utc=True)
        shifted[field] = times.dt.tz_convert(zone).dt.tz_localize(None).dt.tz_localize(UTC)
    return shifted


def time_axis(
    start: datetime, end: datetime, zone: tzinfo, field: str = TIME_FIELD, title: str | None = None
) -> alt.X:
    spans_days = end - start > timedelta(days=1)
    return alt.X(
        f"{field}:T",
        title=title if title is not None else f"Time ({zone_label(zone)})",
        scale=alt.Scale(type="utc", domain=[wall_clock(start, zone), wall_clock(end, zone)]),
        axis=alt.Axis(format="%b %d %H:%M" if spans_days else "%H:%M", formatType="utc"),
    )


def time_tooltip(zone: tzinfo, field: str = TIME_FIELD, words: str = "from") -> alt.Tooltip:
    return alt.Tooltip(
        f"{field}:T",
        title=f"{words} ({zone_label(zone)})",
        format="%Y-%m-%d %H:%M:%S",
        formatType="utc",
    )


def time_chart(
    frame: pd.DataFrame,
    start: datetime,
    end: datetime,
    *,
    y: str,
    y_title: str,
    zone: tzinfo = UTC,
    mark: str = "line",
    color: str | None = None,
    color_domain: Sequence[str] | None = None,
    color_range: Sequence[str] | None = None,
    dash: str | None = None,
    y_format: str | None = None,
    tooltip: Sequence[Any] = (),
    marker: tuple[datetime, str] | None = None,
) -> alt.Chart | alt.LayerChart:
    """A bar or line chart of `y` over time, one series per `color` (and `dash`) value;
    `marker` draws a labelled dashed rule at that time. Check `has_data` first."""
    chart = alt.Chart(wall_clock_frame(frame, [TIME_FIELD], zone))
    chart = chart.mark_bar() if mark == "bar" else chart.mark_line(point=True)
    # Only zeros: Vega would draw a single "0" tick (or "0.000000"); give it a unit range.
    only_zeros = not bool((frame[y].fillna(0) != 0).any()) if y in frame else True
    encoding: dict[str, Any] = {
        "x": time_axis(start, end, zone, title=""),
        "y": alt.Y(
            f"{y}:Q",
            title=y_title,
            stack="zero" if mark == "bar" else None,
            scale=alt.Scale(domain=[0, 1]) if only_zeros else alt.Scale(zero=True),
            axis=alt.Axis(format=y_format) if y_format else alt.Axis(),
        ),
        "tooltip": [time_tooltip(zone), *tooltip],
    }
    if color is not None:
        scale = (
            alt.Scale(domain=list(color_domain), range=list(color_range))
            if color_domain and color_range
            else alt.Undefined
        )
        encoding["color"] = alt.Color(f"{color}:N", scale=scale)
    if dash is not None:
        encoding["strokeDash"] = alt.StrokeDash(f"{dash}:N")
    drawn = chart.encode(**encoding)
    if marker is None or not start <= marker[0] <= end:
        return drawn
    return alt.layer(drawn, marker_rule(marker[0], marker[1], start, end, zone))


def marker_rule(
    at: datetime, label: str, start: datetime, end: datetime, zone: tzinfo
) -> alt.Chart:
    """A dashed vertical rule at `at` with `label` beside it, on the chart's time axis."""
    frame = pd.DataFrame({"at": [wall_clock(at, zone)], "label": [label]})
    base = alt.Chart(frame).encode(x=time_axis(start, end, zone, field="at", title=""))
    rule = base.mark_rule(strokeDash=[6, 4], color="gray")
    text = base.mark_text(align="right", baseline="top", dx=-4, dy=4, color="gray").encode(
        text="label:N", y=alt.value(0)
    )
    return alt.layer(rule, text)
