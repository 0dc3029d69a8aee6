"""Scheduled Tasks Timeline: due tasks first, the upcoming runs, and a chart of the next hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from jobdash.app.read.models import Scheduler, UpcomingTask
from jobdash.app.rules.schedules import ticks_in
from jobdash.app.rules.text import format_clock
from jobdash.app.ui.widgets import columns
from jobdash.app.ui.widgets.downloads import csv_download_button, records_source

TITLE = "Scheduled Tasks Timeline"
TIMELINE_HOURS = 6
# An every-second cron would put 21,600 marks in 6 hours: past this many the chart is noise.
MAX_MARKS_PER_TASK = 120
TYPE_LABELS = {"cron": "cron", "interval": "interval", "onetime": "one-time"}
DUE_LABEL = "due (late)"
KIND_COLORS = {
    "cron": "#1f77b4",
    "interval": "#2ca02c",
    "one-time": "#9467bd",
    DUE_LABEL: "#d62728",
}


@dataclass(frozen=True)
class TimelinePoint:
    task: str
    run_at: datetime
    schedule_type: str
    is_due: bool


def timeline_points(
    upcoming: list[UpcomingTask],
    now: datetime,
    hours: float = TIMELINE_HOURS,
    max_per_task: int = MAX_MARKS_PER_TASK,
) -> list[TimelinePoint]:
    """Runs to draw between now and now + hours: periodic tasks repeat, one-time jobs once.

    Due (late) tasks are drawn at `now` so they stay visible; a cron croniter cannot read
    is drawn at its next run only.
    """
    end = now + timedelta(hours=hours)
    points: list[TimelinePoint] = []
    for task in upcoming:
        label = task.task
        if task.is_due:
            points.append(TimelinePoint(label, now, task.schedule_type, True))
            if task.schedule_type == "onetime":
                continue
        if task.schedule_type == "onetime" or not task.schedule:
            if now <= task.next_run < end:
                points.append(TimelinePoint(label, task.next_run, task.schedule_type, False))
            continue
        try:
            ticks = ticks_in(task.schedule, max(now, task.next_run), end, max_per_task)
        except (ValueError, KeyError, TypeError):
            ticks = [task.next_run] if now <= task.next_run < end else []
        points.extend(TimelinePoint(label, tick, task.schedule_type, False) for tick in ticks)
    return points


def due_first(upcoming: list[UpcomingTask]) -> list[UpcomingTask]:
    """Due tasks first (most overdue first), then by next run."""
    return sorted(upcoming, key=lambda t: (not t.is_due, t.next_run))


def upcoming_table(upcoming: list[UpcomingTask]) -> pd.DataFrame:
    rows = [
        {
            "Status": "⚠ DUE" if task.is_due else "",
            "Task": task.task,
            "Type": TYPE_LABELS.get(task.schedule_type, task.schedule_type),
            "Schedule": schedule_text(task),
            "Next run": task.next_run_relative,
            "Next run at": pd.Timestamp(task.next_run),
            "Last run": pd.Timestamp(task.last_run) if task.last_run else pd.NaT,
            "Queue": task.queue or "",
        }
        for task in due_first(upcoming)
    ]
    columns = ["Status", "Task", "Type", "Schedule", "Next run", "Next run at", "Last run", "Queue"]
    return pd.DataFrame(rows, columns=columns)


def schedule_text(task: UpcomingTask) -> str:
    if task.schedule and task.schedule_description and task.schedule_description != task.schedule:
        return f"{task.schedule_description} ({task.schedule})"
    return task.schedule_description or task.schedule or ""


def timeline_chart(points: list[TimelinePoint], now: datetime) -> alt.LayerChart:
    frame = pd.DataFrame(
        [
            {
                "Task": p.task,
                "Run at": p.run_at,
                "Kind": DUE_LABEL if p.is_due else TYPE_LABELS.get(p.schedule_type, "cron"),
            }
            for p in points
        ]
    )
    domain = [now, now + timedelta(hours=TIMELINE_HOURS)]
    marks = (
        alt.Chart(frame)
        .mark_tick(thickness=2, size=18)
        .encode(
            x=alt.X(
                "Run at:T",
                title="Time (UTC)",
                scale=alt.Scale(domain=domain),
                axis=alt.Axis(format="%H:%M"),
            ),
            y=alt.Y("Task:N", title=None, sort=None, axis=alt.Axis(labelLimit=260)),
            color=alt.Color(
                "Kind:N",
                title=None,
                scale=alt.Scale(domain=list(KIND_COLORS), range=list(KIND_COLORS.values())),
            ),
            tooltip=[
                alt.Tooltip("Task:N"),
                alt.Tooltip("Run at:T", format="%Y-%m-%d %H:%M:%S", title="Run at (UTC)"),
                alt.Tooltip("Kind:N"),
            ],
        )
    )
    now_rule = (
        alt.Chart(pd.DataFrame({"now": [now]})).mark_rule(strokeDash=[4, 4]).encode(x="now:T")
    )
    return alt.layer(marks, now_rule).properties(height=max(120, 28 * frame["Task"].nunique()))


def render(scheduler: Scheduler, app_warning: str | None = None) -> None:
    cols = st.columns(3)
    cols[0].metric("Scheduled tasks", f"{scheduler.total_scheduled_tasks:,}")
    cols[1].metric("Due now", f"{scheduler.due_tasks:,}", help="Missed or late runs")
    upcoming_runs = [t for t in due_first(scheduler.upcoming) if not t.is_due]
    next_at = scheduler.next_execution
    cols[2].metric(
        "Next execution",
        format_clock(next_at, columns.display_zone()) if next_at else "—",
        delta=upcoming_runs[0].next_run_relative if upcoming_runs else None,
        delta_color="off",
        delta_arrow="off",
        help="Earliest future run (UTC)",
    )
    if app_warning:
        st.text(app_warning)
    if not scheduler.upcoming:
        st.info("No periodic tasks or scheduled jobs.", icon=":material/event_available:")
        return
    due = [t for t in scheduler.upcoming if t.is_due]
    if due:
        st.warning(f"{len(due)} task(s) due — they missed their run time", icon=":material/alarm:")
    st.dataframe(
        upcoming_table(scheduler.upcoming),
        hide_index=True,
        width="stretch",
        column_config={
            "Status": st.column_config.TextColumn("Status", width="small"),
            "Task": st.column_config.TextColumn("Task"),
            "Schedule": st.column_config.TextColumn("Schedule"),
            "Next run": st.column_config.TextColumn("Next run"),
            "Next run at": columns.time_column("Next run at"),
            "Last run": columns.time_column("Last run"),
            "Queue": st.column_config.TextColumn("Queue"),
        },
    )
    csv_download_button(
        "Download CSV",
        records_source(UpcomingTask, due_first(scheduler.upcoming)),
        "upcoming-scheduled-tasks",
    )
    now = datetime.now(UTC)
    points = timeline_points(scheduler.upcoming, now)
    if points:
        st.altair_chart(timeline_chart(points, now), width="stretch")
        st.caption(f"Runs over the next {TIMELINE_HOURS} hours (UTC); dashed line: now.")
    else:
        st.caption(f"No runs in the next {TIMELINE_HOURS} hours.")
