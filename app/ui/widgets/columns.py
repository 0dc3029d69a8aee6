"""The columns of every table, named in words the same way everywhere ("Failed at (UTC)"),
times shown in the display time zone (JOBDASH_TIMEZONE, UTC by default) and saying which."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

from jobdash.app.rules.text import zone_label
from jobdash.core.settings import load_settings


def display_zone() -> ZoneInfo:
    return ZoneInfo(load_settings().display_timezone)


def time_label(words: str) -> str:
    """ "Failed at (UTC)", "Failed at (Europe/Berlin)"."""
    return f"{words} ({zone_label(display_zone())})"


def time_column(words: str, precise: bool = False) -> Any:
    return st.column_config.DatetimeColumn(
        time_label(words),
        format="YYYY-MM-DD HH:mm:ss.SSS" if precise else "YYYY-MM-DD HH:mm:ss",
        timezone=display_zone().key,
    )


# Field name (as loaders and CSVs name it) -> the column's words; times are `time_column`s.
WORDS = {
    "job": "Job", "id": "Job", "job_id": "Job", "queue": "Queue", "queue_name": "Queue",
    "task": "Task", "task_name": "Task", "exception": "Exception", "exception_type": "Exception",
    "error": "Error", "message": "Error", "attempts": "Attempts", "args": "Args",
    "priority": "Priority", "lock": "Lock", "queueing_lock": "Queueing lock", "status": "Status",
    "actor": "Actor", "action": "Action", "done": "Done", "skipped": "Skipped", "jobs": "Jobs",
    "filter": "Filter", "skipped why": "Skipped, why", "deleted_by": "Deleted by",
    "errors": "Errors recorded", "failures": "Failures", "share": "Share of failures",
    "example_message": "Example message", "example_job_id": "Example job",
    "failed_jobs": "Failed jobs", "event": "Event", "until next": "Until next",
}  # fmt: skip
TIMES = {
    "failed_at": "Failed at", "deleted_at": "Deleted at", "at": "At",
    "first_seen": "First seen", "last_seen": "Last seen", "scheduled_at": "Scheduled at",
    "next_run_at": "Next run at", "last_run": "Last run", "bucket_start": "From",
}  # fmt: skip


def config(names: Iterable[str], **overrides: Any) -> dict[str, Any]:
    """Column configs for these fields: words for every one, times in the display zone."""
    out: dict[str, Any] = {}
    for name in names:
        if name in TIMES:
            out[name] = time_column(TIMES[name])
        else:
            words = WORDS.get(name, name.replace("_", " ").capitalize())
            out[name] = st.column_config.Column(words)
    return out | overrides
