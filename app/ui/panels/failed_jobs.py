"""Failed Jobs: the total and the 50 most recent failures, linking to the management page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.app.read.models import FailedJobs
from jobdash.app.rules.text import format_count
from jobdash.app.ui.navigation import page_file
from jobdash.app.ui.widgets import columns, job_links
from jobdash.app.ui.widgets.downloads import failed_jobs_csv_link

TITLE = "Failed Jobs"
MANAGE_PAGE = "failed_jobs"


def failed_table(failed: FailedJobs) -> pd.DataFrame:
    rows = [
        {
            "Job": job_links.job_label(job.id),
            "Queue": job.queue,
            "Task": job.task,
            "Error": job.error if job.error is not None else "(no error recorded)",
            "Args": job.payload_preview,
            "Failed at": pd.Timestamp(job.failed_at) if job.failed_at else pd.NaT,
            "Attempts": job.attempts,
        }
        for job in failed.jobs
    ]
    columns = ["Job", "Queue", "Task", "Error", "Args", "Failed at", "Attempts"]
    return pd.DataFrame(rows, columns=columns)


def render(failed: FailedJobs) -> None:
    head = st.columns([1, 3])
    head[0].metric("Failed jobs", format_count(failed.total_failed_jobs))
    with head[1]:
        st.page_link(page_file(MANAGE_PAGE), label="Manage failed jobs →", icon=":material/build:")
        if failed.total_failed_jobs > len(failed.jobs):
            st.caption(f"Showing the {len(failed.jobs)} most recent failures.")
        if failed.total_failed_jobs:
            failed_jobs_csv_link(FailedJobFilter(), "Every failed job, not only the ones listed")
    if not failed.jobs:
        st.success("No failed jobs.", icon=":material/check_circle:")
        return
    st.dataframe(
        failed_table(failed),
        hide_index=True,
        width="stretch",
        column_config={
            "Job": job_links.job_column("dashboard_failed_job"),
            "Queue": st.column_config.TextColumn("Queue"),
            "Task": st.column_config.TextColumn("Task"),
            "Error": st.column_config.TextColumn("Error", width="large"),
            "Args": st.column_config.TextColumn("Args", help="Arguments as JSON (cut at 100)"),
            "Failed at": columns.time_column("Failed at"),
            "Attempts": st.column_config.NumberColumn("Attempts"),
        },
    )
    job_links.follow()
