"""Throughput history: outcomes, failure rate, durations, queue depth and latency, error groups.

Range and filters live in the URL (?range=7d&queue=mail&task=...), so a view can be shared.
Data and job text are rendered as chart values and table cells only, never as markdown.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import altair as alt
import pandas as pd
import streamlit as st

from jobdash.app.read.history import (
    DEFAULT_RANGE,
    RANGES,
    HistoryData,
    load_filter_options,
    load_history,
)
from jobdash.app.rules.csv_format import csv_download_button
from jobdash.app.rules.text import escape_markdown, format_interval
from jobdash.app.ui.data import cache_ttl
from jobdash.core import pool as db
from jobdash.core.errors import DatabaseNotConfigured, describe_error
from jobdash.core.settings import load_settings

ALL = "(all)"
_SETTINGS = load_settings()
REFRESH_S = _SETTINGS.history_refresh_s


# Every chart's tooltip starts with the bucket it shows.
BUCKET_TOOLTIP = alt.Tooltip("bucket_start:T", title="from", format="%Y-%m-%d %H:%M UTC")


@st.cache_data(ttl=cache_ttl(REFRESH_S), show_spinner=False)
def _cached_history(
    database_url: str, range_name: str, queue: str | None, task: str | None
) -> HistoryData:
    with db.connection(database_url) as conn:
        return load_history(
            conn,
            range_name,
            queue=queue,
            task=task,
            minute_retention_days=_SETTINGS.minute_retention_days,
        )


@st.cache_data(ttl=300, show_spinner=False)
def _cached_filter_options(database_url: str) -> tuple[list[str], list[str]]:
    with db.connection(database_url) as conn:
        return load_filter_options(conn)


def failed_jobs_link(task: str, exception_type: str) -> str:
    """The failed-jobs page filtered to one error group (its query params: task, exception)."""
    return "failed_jobs?" + urlencode({"task": task, "exception_type": exception_type})


def _choice(param: str, options: list[str], default: str) -> str:
    value = st.query_params.get(param, default)
    return value if value in options else default


def _controls(database_url: str) -> tuple[str, str | None, str | None]:
    try:
        queues, tasks = _cached_filter_options(database_url)
    except Exception:  # filters are a convenience: the charts still load unfiltered
        queues, tasks = [], []
    wanted_queue = st.query_params.get("queue")
    wanted_task = st.query_params.get("task")
    # A queue or task from a shared URL is kept even when it has no history yet.
    queue_options = [ALL, *sorted(set(queues) | ({wanted_queue} if wanted_queue else set()))]
    task_options = [ALL, *sorted(set(tasks) | ({wanted_task} if wanted_task else set()))]
    names = list(RANGES)
    left, middle, right = st.columns([2, 1, 1])
    range_name = (
        left.segmented_control(
            "Range", names, default=_choice("range", names, DEFAULT_RANGE), key="history_range"
        )
        or DEFAULT_RANGE
    )
    queue = middle.selectbox(
        "Queue", queue_options, index=queue_options.index(_choice("queue", queue_options, ALL)),
        key="history_queue",
    )  # fmt: skip
    task = right.selectbox(
        "Task", task_options, index=task_options.index(_choice("task", task_options, ALL)),
        key="history_task",
    )  # fmt: skip
    st.query_params["range"] = range_name
    for param, value in (("queue", queue), ("task", task)):
        if value == ALL:
            st.query_params.pop(param, None)
        else:
            st.query_params[param] = value
    return range_name, (None if queue == ALL else queue), (None if task == ALL else task)


def _time_axis(data: HistoryData) -> alt.X:
    return alt.X("bucket_start:T", title=None, scale=alt.Scale(domain=[data.start, data.end]))


def throughput_chart(data: HistoryData) -> alt.Chart:
    frame = data.throughput.melt(
        id_vars=["bucket_start"], value_vars=["succeeded", "failed"], var_name="outcome",
        value_name="jobs",
    )  # fmt: skip
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=_time_axis(data),
            y=alt.Y("jobs:Q", stack="zero", title=f"jobs per {format_interval(_seconds(data))}"),
            color=alt.Color(
                "outcome:N",
                scale=alt.Scale(domain=["succeeded", "failed"], range=["#4c9a2a", "#d62728"]),
            ),
            tooltip=[
                BUCKET_TOOLTIP,
                "outcome:N",
                "jobs:Q",
            ],
        )  # fmt: skip
    )


def failure_rate_chart(data: HistoryData) -> alt.Chart:
    return (
        alt.Chart(data.throughput.dropna(subset=["failure_rate"]))
        .mark_line(point=True)
        .encode(
            x=_time_axis(data),
            y=alt.Y("failure_rate:Q", title="failure rate", axis=alt.Axis(format="%")),
            tooltip=[
                BUCKET_TOOLTIP,
                alt.Tooltip("failure_rate:Q", format=".2%"),
                "failed:Q",
                "succeeded:Q",
            ],
        )  # fmt: skip
    )


def duration_chart(data: HistoryData) -> alt.Chart:
    frame = data.throughput.melt(
        id_vars=["bucket_start"], value_vars=["p50_ms", "p95_ms"], var_name="percentile",
        value_name="ms",
    ).dropna(subset=["ms"])  # fmt: skip
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=_time_axis(data),
            y=alt.Y("ms:Q", title="duration (ms)"),
            color="percentile:N",
            tooltip=[
                BUCKET_TOOLTIP,
                "percentile:N",
                alt.Tooltip("ms:Q", format=",.1f"),
            ],
        )  # fmt: skip
    )


def depth_chart(data: HistoryData) -> alt.Chart:
    frame = data.queue_depth.melt(
        id_vars=["bucket_start", "queue"], value_vars=["ready", "scheduled", "doing"],
        var_name="state", value_name="jobs",
    )  # fmt: skip
    return (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=_time_axis(data),
            y=alt.Y("jobs:Q", title="jobs (average)"),
            color="queue:N",
            strokeDash="state:N",
            tooltip=[
                BUCKET_TOOLTIP,
                "queue:N",
                "state:N",
                alt.Tooltip("jobs:Q", format=",.1f"),
            ],
        )  # fmt: skip
    )


def latency_chart(data: HistoryData) -> alt.Chart:
    return (
        alt.Chart(data.queue_depth.dropna(subset=["latency_s"]))
        .mark_line(point=True)
        .encode(
            x=_time_axis(data),
            y=alt.Y("latency_s:Q", title="oldest ready job (s)"),
            color="queue:N",
            tooltip=[
                BUCKET_TOOLTIP,
                "queue:N",
                alt.Tooltip("latency_s:Q", format=",.1f", title="latency (s)"),
            ],
        )  # fmt: skip
    )


def _seconds(data: HistoryData) -> float:
    return data.bucket.total_seconds()


def _chart_section(title: str, chart: alt.Chart, frame: pd.DataFrame, name: str) -> None:
    st.subheader(title)
    if frame.empty:
        st.caption("No data in this range.")
    else:
        st.altair_chart(chart, use_container_width=True)
    csv_download_button("Download CSV", frame, f"history-{name}", key=f"csv-history-{name}")


def _error_groups(data: HistoryData) -> None:
    st.subheader("Error groups")
    groups = data.error_groups.copy()
    if groups.empty:
        st.caption("No final failures recorded by instrumented workers in this range.")
        return
    groups["failed_jobs"] = [
        failed_jobs_link(t, e)
        for t, e in zip(groups["task"], groups["exception_type"], strict=True)
    ]
    st.dataframe(
        groups,
        hide_index=True,
        use_container_width=True,
        column_config={
            "share": st.column_config.ProgressColumn(
                "share of failures", format="percent", min_value=0, max_value=1
            ),
            "failed_jobs": st.column_config.LinkColumn("failed jobs", display_text="open"),
            "first_seen": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "last_seen": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        },
    )
    csv_download_button(
        "Download CSV", data.error_groups, "history-error-groups", key="csv-history-errors"
    )


def render(data: HistoryData) -> None:
    if not data.status.recording:
        since = (
            f"complete up to {data.status.complete_to:%Y-%m-%d %H:%M} UTC"
            if data.status.complete_to
            else "no rollup has run yet"
        )
        st.warning(
            "History is not being recorded (" + escape_markdown(since) + "): start an "
            "instrumented worker, or run `jobdash rollup`. "
            + ("The last hour below is computed from raw events." if data.source == "raw" else ""),
            icon=":material/warning:",
        )
    st.caption(
        f"{data.range_name} in buckets of {format_interval(_seconds(data))}, "
        f"from {data.level} data; refreshes every {format_interval(REFRESH_S)}."
    )
    _chart_section("Throughput", throughput_chart(data), data.throughput, "throughput")
    _chart_section("Failure rate", failure_rate_chart(data), data.throughput, "failure-rate")
    _chart_section("Duration p50 / p95", duration_chart(data), data.throughput, "durations")
    _chart_section("Queue depth", depth_chart(data), data.queue_depth, "queue-depth")
    _chart_section("Queue latency", latency_chart(data), data.queue_depth, "queue-latency")
    _error_groups(data)


@st.fragment(run_every=REFRESH_S)
def _history_fragment(database_url: str, range_name: str, queue: str | None, task: str | None):
    key = ("history_last_good", range_name, queue, task)
    try:
        data = _cached_history(database_url, range_name, queue, task)
        st.session_state[key] = data
    except Exception as exc:  # a panel never takes the page down
        data = st.session_state.get(key)
        st.error(
            escape_markdown(f"History could not be loaded: {describe_error(exc)}"),
            icon=":material/error:",
        )
        if data is None:
            return
        st.caption(f"Showing data from before {time.strftime('%H:%M:%S', time.gmtime())} UTC.")
    render(data)


def main() -> None:
    st.title("Throughput history")
    try:
        database_url = db.configured_database_url()
    except DatabaseNotConfigured as exc:
        st.error(escape_markdown(str(exc)))
        return
    range_name, queue, task = _controls(database_url)
    _history_fragment(database_url, range_name, queue, task)


main()
