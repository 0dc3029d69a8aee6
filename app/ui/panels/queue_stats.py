"""Queue Statistics: six stat cards over the window and one row per queue."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from jobdash.app.read.dashboard import COUNT_CAP
from jobdash.app.read.models import QueueRow, QueueStats
from jobdash.app.rules.text import (
    format_capped,
    format_count,
    format_duration,
    format_milliseconds,
    format_percent,
    format_window,
)
from jobdash.app.ui.widgets.downloads import csv_download_button, records_source

TITLE = "Queue Statistics"
CAP_HELP = (
    f"; exact while at most {COUNT_CAP:,} jobs are open; past that '≈' is the last minute's"
    " sample and '+' a lower bound"
)


def queue_table(stats: QueueStats) -> pd.DataFrame:
    rows = [
        {
            "Queue": row.name,
            "Ready": format_capped(row.ready, row.capped, row.ready_estimate),
            "Scheduled": format_capped(row.scheduled, row.capped, row.scheduled_estimate),
            "Doing": format_capped(row.doing, row.capped, row.doing_estimate),
            "Failed": f"{row.failed:,}",
            "Latency": format_duration(row.oldest_ready_age_s),
        }
        for row in stats.queues
    ]
    columns = ["Queue", "Ready", "Scheduled", "Doing", "Failed", "Latency"]
    return pd.DataFrame(rows, columns=columns)


def render(stats: QueueStats) -> None:
    window = format_window(stats.window_seconds)

    def count(name: str) -> str:
        return format_count(getattr(stats, name))

    capped = any(q.capped for q in stats.queues)
    top = st.columns(3)
    top[0].metric(
        "Current queue size",
        count("current_queue_size") + ("+" if capped else ""),
        help="Jobs ready to run now" + (" (at least: the oldest open jobs were counted)" * capped),
    )
    top[1].metric("Total jobs", count("total_jobs"), help=f"Jobs finished in the {window}")
    top[2].metric("Successful", count("successful_jobs"), help=f"Jobs succeeded in the {window}")
    bottom = st.columns(3)
    bottom[0].metric("Failed", count("failed_jobs"), help=f"Jobs failed for good in the {window}")
    bottom[1].metric("Success rate", format_percent(stats.success_rate), help=f"In the {window}")
    bottom[2].metric(
        "Avg run time",
        format_milliseconds(stats.avg_execution_time_ms),
        help=f"Per attempt: its end minus its own start, over attempts ended in the {window}",
    )
    source = "" if stats.window_source == "history" else " (from raw events: no rollup is running)"
    st.caption(f"Totals, success rate and run time: {window}{source}.")
    if not stats.queues:
        st.caption("No queues yet: no jobs in the database.")
        return
    st.dataframe(
        queue_table(stats),
        hide_index=True,
        width="stretch",
        column_config={
            "Queue": st.column_config.TextColumn("Queue"),
            "Ready": st.column_config.TextColumn("Ready", help="todo, runnable now" + CAP_HELP),
            "Scheduled": st.column_config.TextColumn(
                "Scheduled", help="todo, in the future" + CAP_HELP
            ),
            "Doing": st.column_config.TextColumn("Doing", help="running now" + CAP_HELP),
            "Failed": st.column_config.TextColumn("Failed", help="exact"),
            "Latency": st.column_config.TextColumn(
                "Latency",
                help="How long the longest-waiting ready job has waited since it became "
                "runnable (its scheduled time or its latest deferral, whichever is later)",
            ),
        },
    )
    if capped and stats.count_cap:
        st.caption(
            f"More than {stats.count_cap:,} jobs are open: counts are of the oldest "
            f"{stats.count_cap:,} ('+'), or the last minute's sample ('≈')."
        )
    csv_download_button("Download CSV", records_source(QueueRow, stats.queues), "queue-statistics")
