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


def wall_clock_datetime(value: datetime, zone: tzinfo) -> alt.DateTime:
    """The zone's wall-clock time as a Vega-Lite DateTime in UTC (a scale domain; an ISO
    string or a number is read differently by different marks' layers)."""
    local = value.astimezone(zone)
    return alt.DateTime(
        year=local.year, month=local.month, date=local.day, hours=local.hour,
        minutes=local.minute, seconds=local.second,
        milliseconds=local.microsecond // 1000, utc=True,
    )  # fmt: skip


def wall_clock_frame(frame: pd.DataFrame, fields: Sequence[str], zone: tzinfo) -> pd.DataFrame:
    shifted = frame.copy()
    for field in fields:
        times = pd.to_datetime(shifted[field], utc=True)
        shifted[field] = times.dt.tz_convert(zone).dt.tz_localize(None).dt.tz_localize(UTC)
    return shifted


def time_axis(
    start: datetime,
    end: datetime,
    zone: tzinfo,
    field: str = TIME_FIELD,
    title: str | None = None,
    *,
    domain: bool = True,
) -> alt.X:
    """The time axis of [start, end). In a layered chart only one layer may give the domain
    (`domain=False` for the others): Vega-Lite reads the same domain differently in layers
    of different marks, warns of conflicting domains and of an "Infinite extent"."""
    spans_days = end - start > timedelta(days=1)
    scale = (
        alt.Scale(
            type="utc",
            domain=[wall_clock_datetime(start, zone), wall_clock_datetime(end, zone)],
        )
        if domain
        else alt.Scale(type="utc")
    )
    return alt.X(
        f"{field}:T",
        title=title if title is not None else f"Time ({zone_label(zone)})",
        scale=scale,
        # No formatType: Vega-Lite drops "utc" as an unregistered custom type (then labels
        # read "11 PM"); a time format on a utc scale is applied in UTC.
        axis=alt.Axis(format="%b %d %H:%M" if spans_days else "%H:%M"),
    )


def time_tooltip(zone: tzinfo, field: str = TIME_FIELD, words: str = "from") -> alt.Tooltip:
    # A utc time unit makes Vega-Lite format the value in UTC (a tooltip has no scale).
    return alt.Tooltip(
        f"{field}:T",
        title=f"{words} ({zone_label(zone)})",
        timeUnit="utcyearmonthdatehoursminutesseconds",
        format="%Y-%m-%d %H:%M:%S",
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
    drawn: alt.Chart = chart.encode(**encoding)
    if marker is None or not start <= marker[0] <= end:
        return drawn
    # LayerChart itself, what alt.layer makes of charts without facet encodings (typed as
    # LayerChart | FacetChart).
    return alt.LayerChart(layer=[drawn, marker_rule(marker[0], marker[1], start, end, zone)])


def marker_rule(
    at: datetime, label: str, start: datetime, end: datetime, zone: tzinfo
) -> alt.LayerChart:
    """A dashed vertical rule at `at` with `label` beside it, on the chart's time axis."""
    frame = pd.DataFrame({"at": [wall_clock(at, zone)], "label": [label]})
    base = alt.Chart(frame).encode(x=time_axis(start, end, zone, "at", "", domain=False))
    # A grey that reads on the light and the dark theme alike.
    rule = base.mark_rule(strokeDash=[6, 4], color="#808495")
    text = base.mark_text(align="right", baseline="top", dx=-4, dy=4, color="#808495").encode(
        text="label:N", y=alt.value(0)
    )
    return alt.LayerChart(layer=[rule, text])


def vega_lite_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart as a Vega-Lite dict for `st.vega_lite_chart`, as `st.altair_chart` would send
    it (without the default theme's 300 px view size): build it once, draw it many times."""
    spec = chart.to_dict()
    config = spec.get("config", {})
    config.pop("view", None)
    if not config:
        spec.pop("config", None)
    return spec
