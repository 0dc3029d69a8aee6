"""Throughput history: outcomes, failure rate, durations, queue depth and latency, error groups.

Range and filters live in the URL (?range=7d&queue=mail&task=...), so a view can be shared.
Data and job text are rendered as chart values and table cells only, never as markdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from jobdash.app.cache import data
from jobdash.app.read.history import DEFAULT_RANGE, ERROR_GROUP_COLUMNS, RANGES, HistoryData
from jobdash.app.rules.text import (
    escape_markdown,
    format_clock,
    format_interval,
    freshness_caption,
)
from jobdash.app.ui import live
from jobdash.app.ui.widgets import columns, job_links
from jobdash.app.ui.widgets.charts import NO_DATA, has_data, time_chart
from jobdash.app.ui.widgets.downloads import csv_download_button
from jobdash.app.ui.widgets.results import data_or_notice

ALL = "(all)"
REFRESH_S = data.refresh_interval(data.HISTORY)


ERROR_GROUP_TARGETS = "history_error_group_targets"


def failed_jobs_filter(task: str, exception_type: str) -> dict[str, str]:
    """The failed-jobs page's query params for one error group."""
    return {"task": task, "exception_type": exception_type}


def _melted(frame: pd.DataFrame, values: list[str], var: str, value: str) -> pd.DataFrame:
    ids = [c for c in ("bucket_start", "queue") if c in frame.columns]
    return frame.melt(id_vars=ids, value_vars=values, var_name=var, value_name=value).dropna(
        subset=[value]
    )


@dataclass(frozen=True)
class Chart:
    """One chart of the page: its title, the rows it draws and how (see time_chart)."""

    title: str
    name: str
    rows: Callable[[HistoryData], pd.DataFrame]
    options: Callable[[HistoryData], dict[str, Any]] = field(default=lambda h: {})

    def frame(self, history: HistoryData) -> pd.DataFrame:
        return self.rows(history)


def _per_bucket(history: HistoryData) -> str:
    return f"jobs per {format_interval(history.bucket.total_seconds())}"


CHARTS = [
    Chart(
        "Throughput", "throughput",
        lambda h: _melted(h.throughput, ["succeeded", "failed"], "outcome", "jobs"),
        lambda h: {
            "y": "jobs", "y_title": _per_bucket(h), "mark": "bar", "color": "outcome",
            "color_domain": ["succeeded", "failed"], "color_range": ["#4c9a2a", "#d62728"],
            "tooltip": ["outcome:N", "jobs:Q"],
        },
    ),
    Chart(
        "Failure rate", "failure-rate",
        lambda h: h.throughput.dropna(subset=["failure_rate"]),
        lambda h: {
            "y": "failure_rate", "y_title": "failure rate", "y_format": "%",
            "tooltip": [alt.Tooltip("failure_rate:Q", format=".2%"), "failed:Q", "succeeded:Q"],
        },
    ),
    Chart(
        "Duration p50 / p95", "durations",
        lambda h: _melted(h.throughput, ["p50_ms", "p95_ms"], "percentile", "ms"),
        lambda h: {
            "y": "ms", "y_title": "duration (ms)", "color": "percentile",
            "tooltip": ["percentile:N", alt.Tooltip("ms:Q", format=",.1f")],
        },
    ),
    Chart(
        "Queue depth", "queue-depth",
        lambda h: _melted(h.queue_depth, ["ready", "scheduled", "doing"], "state", "jobs"),
        lambda h: {
            "y": "jobs", "y_title": "jobs (average)", "color": "queue", "dash": "state",
            "tooltip": ["queue:N", "state:N", alt.Tooltip("jobs:Q", format=",.1f")],
        },
    ),
    Chart(
        "Queue latency", "queue-latency",
        lambda h: h.queue_depth.dropna(subset=["latency_s"]),
        lambda h: {
            "y": "latency_s", "y_title": "oldest ready job (s)", "color": "queue",
            "tooltip": ["queue:N", alt.Tooltip("latency_s:Q", format=",.1f", title="latency (s)")],
        },
    ),
]  # fmt: skip


def _choice(param: str, options: list[str], default: str) -> str:
    value = st.query_params.get(param, default)
    return value if value in options else default


def _controls() -> tuple[str, str | None, str | None]:
    # Filters are a convenience: without their options the charts still load unfiltered.
    queues, tasks = data.fetch(data.HISTORY_FILTER_OPTIONS).data or ([], [])
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


DEMO_MARK = "demo data before"


def _chart_section(history: HistoryData, chart: Chart) -> None:
    st.subheader(chart.title)
    frame = chart.frame(history)
    options = chart.options(history)
    if not has_data(frame, options["y"]):
        st.caption(NO_DATA)
    else:
        marker = (history.demo_until, DEMO_MARK) if history.demo_until else None
        drawn = time_chart(
            frame, history.start, history.end, zone=columns.display_zone(), marker=marker,
            **options,
        )  # fmt: skip
        st.altair_chart(drawn, width="stretch")
    csv_download_button(
        "Download CSV", frame, f"history-{chart.name}", key=f"csv-history-{chart.name}"
    )


def _error_groups(history: HistoryData) -> None:
    st.subheader("Error groups")
    groups = history.error_groups.copy()
    if groups.empty:
        st.caption("No final failures recorded by instrumented workers in this range.")
        return
    # The rows as drawn: a button click names its row by position in them.
    st.session_state[ERROR_GROUP_TARGETS] = [
        failed_jobs_filter(t, e)
        for t, e in zip(groups["task"], groups["exception_type"], strict=True)
    ]
    groups["failed_jobs"] = "Open"
    st.dataframe(
        groups,
        hide_index=True,
        width="stretch",
        column_order=["failed_jobs", *ERROR_GROUP_COLUMNS],
        column_config=columns.config(
            groups.columns,
            share=st.column_config.ProgressColumn(
                "Share of failures", format="percent", min_value=0, max_value=1
            ),
            failed_jobs=job_links.page_column(
                "history_error_group",
                "Failed jobs",
                "failed_jobs",
                lambda: st.session_state.get(ERROR_GROUP_TARGETS, []),
            ),
            example_job_id=st.column_config.NumberColumn("Example job", format="%d"),
        ),
    )
    job_links.follow()
    csv_download_button(
        "Download CSV", history.error_groups, "history-error-groups", key="csv-history-errors"
    )


def render(history: HistoryData) -> None:
    raw = history.source == "raw"
    if not history.status.recording:
        since = (
            f"complete up to {history.status.complete_to:%Y-%m-%d %H:%M} UTC"
            if history.status.complete_to
            else "no rollup has run yet"
        )
        st.warning(
            "History is not being recorded (" + escape_markdown(since) + "): start an "
            "instrumented worker, or run `jobdash rollup`. "
            + ("The last hour below is computed from raw events." if raw else ""),
            icon=":material/warning:",
        )
    if history.demo_until is not None:
        zone = columns.display_zone()
        st.info(
            f"Demo data: history before {format_clock(history.demo_until, zone)} was made "
            "up by `jobdash demo` to show a day at once; "
            "after it, the charts show this demo's real traffic.",
            icon=":material/science:",
        )
    st.caption(
        f"{history.range_name} in buckets of {format_interval(history.bucket.total_seconds())}, "
        f"from {history.level} data; refreshes every {format_interval(REFRESH_S)}."
    )
    for chart in CHARTS:
        _chart_section(history, chart)
    _error_groups(history)


def _history_panel(range_name: str, queue: str | None, task: str | None) -> None:
    result = data.fetch(data.HISTORY, range_name, queue, task)
    st.caption(freshness_caption(result.loaded_at, time.time(), REFRESH_S, live.paused()))
    history: HistoryData | None = data_or_notice("History", result, retry_every_s=REFRESH_S)
    if history is not None:
        render(history)


def main() -> None:
    st.title("Throughput history")
    range_name, queue, task = _controls()
    st.fragment(run_every=live.every(REFRESH_S))(_history_panel)(range_name, queue, task)


main()
