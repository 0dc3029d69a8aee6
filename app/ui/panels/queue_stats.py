"""Queue Statistics: six stat cards over the window and one row per queue."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from jobdash.app.read.models import QueueRow, QueueStats
from jobdash.app.rules.text import (
    format_count,
    format_duration,
    format_milliseconds,
    format_percent,
    format_window,
)
from jobdash.app.ui.widgets.downloads import csv_download_button, records_source

TITLE = "Queue Statistics"


def queue_table(stats: QueueStats) -> pd.DataFrame:
    rows = [
        {
            "Queue": row.name,
            "Ready": row.ready,
            "Scheduled": row.scheduled,
            "Doing": row.doing,
            "Failed": row.failed,
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

    top = st.columns(3)
    top[0].metric("Current queue size", count("current_queue_size"), help="Jobs ready to run now")
    top[1].metric("Total jobs", count("total_jobs"), help=f"Jobs finished in the {window}")
    top[2].metric("Successful", count("successful_jobs"), help=f"Jobs succeeded in the {window}")
    bottom = st.columns(3)
    bottom[0].metric("Failed", count("failed_jobs"), help=f"Jobs failed for good in the {window}")
    bottom[1].metric("Success rate", format_percent(stats.success_rate), help=f"In the {window}")
    bottom[2].metric(
        "Avg execution time",
        format_milliseconds(stats.avg_execution_time_ms),
        help=f"Finish time minus the latest start, over jobs finished in the {window}",
    )
    st.caption(f"Totals, success rate and execution time: {window}.")
    if not stats.queues:
        st.caption("No queues yet: no jobs in the database.")
        return
    st.dataframe(
        queue_table(stats),
        hide_index=True,
        width="stretch",
        column_config={
            "Queue": st.column_config.TextColumn("Queue"),
            "Ready": st.column_config.NumberColumn("Ready", help="todo, runnable now"),
            "Scheduled": st.column_config.NumberColumn("Scheduled", help="todo, in the future"),
            "Doing": st.column_config.NumberColumn("Doing"),
            "Failed": st.column_config.NumberColumn("Failed"),
            "Latency": st.column_config.TextColumn(
                "Latency", help="Age of the oldest ready job (time it has waited)"
            ),
        },
    )
    csv_download_button("Download CSV", records_source(QueueRow, stats.queues), "queue-statistics")
