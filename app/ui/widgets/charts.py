"""The one builder of the dashboard's time charts: UTC on the axis whatever the browser's
time zone (Vega would otherwise draw local time), 24-hour labels, dates when a range spans days.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import altair as alt
import pandas as pd

TIME_FIELD = "bucket_start"


def utc_axis(
    start: datetime, end: datetime, field: str = TIME_FIELD, title: str | None = None
) -> alt.X:
    spans_days = end - start > timedelta(days=1)
    return alt.X(
        f"{field}:T",
        title=title,
        timeUnit=alt.TimeUnitParams(unit="utcyearmonthdatehoursminutesseconds"),
        scale=alt.Scale(type="utc", domain=[start.isoformat(), end.isoformat()]),
        axis=alt.Axis(format="%b %d %H:%M" if spans_days else "%H:%M", formatType="utc"),
    )


def bucket_tooltip(field: str = TIME_FIELD) -> alt.Tooltip:
    return alt.Tooltip(f"{field}:T", title="from (UTC)", format="%Y-%m-%d %H:%M", formatType="utc")


def time_chart(
    frame: pd.DataFrame,
    start: datetime,
    end: datetime,
    *,
    y: str,
    y_title: str,
    mark: str = "line",
    color: str | None = None,
    color_domain: Sequence[str] | None = None,
    color_range: Sequence[str] | None = None,
    dash: str | None = None,
    y_format: str | None = None,
    tooltip: Sequence[Any] = (),
) -> alt.Chart:
    """A bar or line chart of `y` over time, one series per `color` (and `dash`) value."""
    chart = alt.Chart(frame)
    chart = chart.mark_bar() if mark == "bar" else chart.mark_line(point=True)
    encoding: dict[str, Any] = {
        "x": utc_axis(start, end),
        "y": alt.Y(
            f"{y}:Q",
            title=y_title,
            stack="zero" if mark == "bar" else None,
            axis=alt.Axis(format=y_format) if y_format else alt.Axis(),
        ),
        "tooltip": [bucket_tooltip(), *tooltip],
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
    return chart.encode(**encoding)
