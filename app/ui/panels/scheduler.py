"""Scheduled Tasks Timeline: due tasks first, the upcoming runs, and a chart of the next hours.

Drawn from the schedule as it stands when the panel is drawn (not when its data was read;
"now" rounded down to DRAWN_STEP_S so that sessions share one build):
every periodic task across the whole window — a dense schedule as a band with its rate, a sparse
one as ticks —, one-time jobs as points, due ones in red, "now" marked. Jobdash's own
maintenance tasks are listed apart so the team's schedule is not drowned by ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import cast

import altair as alt
import pandas as pd
import streamlit as st

from jobdash.app.read.models import Scheduler, UpcomingTask
from jobdash.app.read.schedule import ScheduleState, scheduler_at
from jobdash.app.rules.schedules import PROCRASTINATE_MAX_DELAY_S, interval_seconds, ticks_in
from jobdash.app.rules.text import format_clock, format_interval, zone_label
from jobdash.app.ui import operations
from jobdash.app.ui.render_cache import RENDERED
from jobdash.app.ui.widgets import columns
from jobdash.app.ui.widgets.charts import time_axis, time_tooltip, vega_lite_spec, wall_clock
from jobdash.app.ui.widgets.downloads import csv_download_button, records_source
from jobdash.app.ui.widgets.feedback import flash
from jobdash.core.auth.identity import Action

TITLE = "Scheduled Tasks Timeline"
TIMELINE_HOURS = 6
# A schedule with more runs than this in the window is drawn as a band with its rate.
DENSE_RUNS = 60
# The panel is drawn as of "now" rounded down to this step, so every session drawing within the
# same step shares one build of its table and chart (croniter and Altair cost tens of ms).
DRAWN_STEP_S = 10
ROW_HEIGHT_PX = 30
TYPE_LABELS = {"cron": "cron", "interval": "interval", "onetime": "one-time"}
KIND_COLORS = {
    "cron": "#1f77b4",
    "interval": "#2ca02c",
    "one-time": "#9467bd",
    "disabled": "#9e9e9e",
    "due": "#d62728",
}
# Marks that are neither a kind nor due (the "now" line): a grey that reads on either theme.
NEUTRAL = "#808495"


@dataclass(frozen=True)
class Timeline:
    """What the chart draws, one row per task, in `rows` order."""

    rows: list[str]
    bands: list[dict[str, object]]  # task, start, end, kind, rate
    ticks: list[dict[str, object]]  # task, at, kind
    due: list[dict[str, object]]  # task, at, late


def _row(task: UpcomingTask) -> str:
    return task.id if task.schedule_type != "onetime" else task.task


def _rate(cron: str, runs: int, hours: float) -> str:
    step = interval_seconds(cron)
    return f"every {format_interval(step)}" if step else f"{runs / hours:,.0f} runs/h"


def disabled_text(task: UpcomingTask, zone: tzinfo = UTC, now: datetime | None = None) -> str:
    """ "disabled since 14:02 UTC by alice" (empty for an enabled task)."""
    if task.disabled_at is None:
        return ""
    by = f" by {task.disabled_by}" if task.disabled_by else ""
    return f"disabled since {format_clock(task.disabled_at, zone, now)}{by}"


def _late(task: UpcomingTask, now: datetime) -> str:
    late = f"late by {format_interval(round((now - task.next_run).total_seconds()))}"
    return late + (" — Procrastinate skips it" if task.skipped_if_late else "")


def build_timeline(
    periodic: list[UpcomingTask], onetime: list[UpcomingTask], now: datetime,
    hours: float = TIMELINE_HOURS,
) -> Timeline:  # fmt: skip
    """Pure: the marks of the next `hours` from `now`."""
    end = now + timedelta(hours=hours)
    timeline = Timeline(rows=[], bands=[], ticks=[], due=[])
    for task in due_first(periodic + onetime):
        row = _row(task)
        if row not in timeline.rows:
            timeline.rows.append(row)
        kind = TYPE_LABELS.get(task.schedule_type, "cron")
        if task.disabled_at is not None:
            # Skipped by every instrumented worker: one grey band saying since when.
            timeline.bands.append(
                {"task": row, "start": now, "end": end, "kind": "disabled",
                 "rate": disabled_text(task, UTC, now)}
            )  # fmt: skip
            continue
        if task.is_due:
            timeline.due.append({"task": row, "at": now, "late": _late(task, now)})
        if task.schedule is None:
            if now <= task.next_run < end:
                timeline.ticks.append({"task": row, "at": task.next_run, "kind": kind})
            continue
        runs = ticks_in(task.schedule, now, end, DENSE_RUNS + 1)
        if len(runs) > DENSE_RUNS:
            rate = _rate(task.schedule, len(ticks_in(task.schedule, now, end, 100_000)), hours)
            timeline.bands.append(
                {"task": row, "start": now, "end": end, "kind": kind, "rate": rate}
            )
        else:
            timeline.ticks.extend({"task": row, "at": run, "kind": kind} for run in runs)
    return timeline


def due_first(upcoming: list[UpcomingTask]) -> list[UpcomingTask]:
    """Due tasks first (most overdue first), then by next run."""
    return sorted(upcoming, key=lambda t: (not t.is_due, t.next_run, t.id))


def _frame(records: list[dict[str, object]], times: list[str], zone: tzinfo) -> pd.DataFrame:
    frame = pd.DataFrame(records)
    for name in times:
        if name in frame:
            frame[name] = [wall_clock(cast(datetime, value), zone) for value in frame[name]]
    return frame


def timeline_chart(timeline: Timeline, now: datetime, zone: tzinfo) -> alt.LayerChart:
    end = now + timedelta(hours=TIMELINE_HOURS)
    # The window is given once, by the "now" rule's layer (see time_axis).
    x = time_axis(now, end, zone, field="at", domain=False)
    y = alt.Y(
        "task:N", title=None, sort=timeline.rows, scale=alt.Scale(domain=timeline.rows),
        axis=alt.Axis(labelLimit=320, labelOverlap=False),
    )  # fmt: skip
    color = alt.Color(
        "kind:N", title=None,
        scale=alt.Scale(domain=list(KIND_COLORS), range=list(KIND_COLORS.values())),
    )  # fmt: skip
    layers: list[alt.Chart] = []
    if timeline.bands:
        bands = alt.Chart(_frame(timeline.bands, ["start", "end"], zone))
        layers.append(
            bands.mark_bar(opacity=0.35, height=ROW_HEIGHT_PX * 0.6).encode(
                x=time_axis(now, end, zone, "start", domain=False), x2="end:T", y=y, color=color,
                tooltip=["task:N", alt.Tooltip("rate:N", title="runs")],
            )
        )  # fmt: skip
        layers.append(
            bands.mark_text(align="left", dx=6, fontSize=11).encode(
                x=time_axis(now, end, zone, "start", domain=False),
                y=y,
                text="rate:N",
                color=color,  # the band's colour: readable on light and dark themes alike
            )
        )
    if timeline.ticks:
        layers.append(
            alt.Chart(_frame(timeline.ticks, ["at"], zone))
            .mark_tick(thickness=2, size=ROW_HEIGHT_PX * 0.6)
            .encode(x=x, y=y, color=color, tooltip=["task:N", "kind:N", _at_tooltip(zone)])
        )
    if timeline.due:
        layers.append(
            alt.Chart(_frame(timeline.due, ["at"], zone))
            .mark_point(shape="triangle-right", size=140, filled=True, color=KIND_COLORS["due"])
            .encode(x=x, y=y, tooltip=["task:N", alt.Tooltip("late:N", title="due")])
        )
    now_frame = pd.DataFrame({"at": [wall_clock(now, zone)]})
    layers.append(
        alt.Chart(now_frame)
        .mark_rule(strokeDash=[4, 4], color=NEUTRAL)
        .encode(x=time_axis(now, end, zone, field="at"))
    )
    height = ROW_HEIGHT_PX * max(1, len(timeline.rows)) + 40
    return alt.LayerChart(layer=layers).properties(height=height)


def _at_tooltip(zone: tzinfo) -> alt.Tooltip:
    return time_tooltip(zone, field="at", words="runs at")


def _status(task: UpcomingTask, now: datetime) -> str:
    if task.disabled_at is not None:
        return "⏸ disabled"
    if not task.is_due:
        return ""
    return "⚠ missed — skipped" if task.skipped_if_late else "⚠ late"


def upcoming_table(upcoming: list[UpcomingTask], now: datetime, zone: tzinfo) -> pd.DataFrame:
    rows = [
        {
            "Status": _status(task, now),
            "Task": task.id if task.schedule_type != "onetime" else f"{task.task} (#{task.id})",
            "Type": TYPE_LABELS.get(task.schedule_type, task.schedule_type),
            "Schedule": schedule_text(task),
            "Next run": task.next_run_relative,
            "Next run at": format_clock(task.next_run, zone, now),
            "Last run": format_clock(task.last_run, zone, now) if task.last_run else "never",
            "Queue": task.queue or "",
            "Disabled": disabled_text(task, zone, now),
        }
        for task in due_first(upcoming)
    ]
    names = [
        "Status", "Task", "Type", "Schedule", "Next run", "Next run at", "Last run", "Queue",
        "Disabled",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=names)


def schedule_text(task: UpcomingTask) -> str:
    if task.schedule and task.schedule_description and task.schedule_description != task.schedule:
        return f"{task.schedule_description} ({task.schedule})"
    return task.schedule_description or task.schedule or ""


def _table(frame: pd.DataFrame) -> None:
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "Status": st.column_config.TextColumn("Status", width="small"),
            "Task": st.column_config.TextColumn("Task", width="medium"),
            "Type": st.column_config.TextColumn("Type", width="small"),
            "Schedule": st.column_config.TextColumn("Schedule", width="large"),
            "Next run": st.column_config.TextColumn("Next run", width="small"),
            "Next run at": st.column_config.TextColumn(columns.time_label("Next run at")),
            "Last run": st.column_config.TextColumn(columns.time_label("Last run")),
            "Queue": st.column_config.TextColumn("Queue", width="small"),
            "Disabled": st.column_config.TextColumn(
                "Disabled", help="Instrumented workers defer none of its ticks until enabled"
            ),
        },
    )


def _metrics(scheduler: Scheduler, zone: tzinfo, now: datetime) -> None:
    cols = st.columns(3)
    more = "+" if scheduler.onetime_capped else ""
    cols[0].metric(
        "Scheduled tasks",
        f"{scheduler.total_scheduled_tasks:,}{more}",
        help="Periodic tasks and one-time jobs"
        + (" (one-time jobs counted among the oldest open jobs only)" if more else ""),
    )
    cols[1].metric("Due now", f"{scheduler.due_tasks:,}", help="Missed or late runs")
    next_at = scheduler.next_execution
    upcoming_runs = [t for t in scheduler.upcoming if not t.is_due]
    cols[2].metric(
        "Next execution",
        format_clock(next_at, zone, now) if next_at else "—",
        delta=upcoming_runs[0].next_run_relative if upcoming_runs else None,
        delta_color="off",
        delta_arrow="off",
        help=f"Earliest future run ({zone_label(zone)})",
    )


def _due_notice(scheduler: Scheduler) -> None:
    due = [t for t in scheduler.upcoming if t.is_due]
    if not due:
        return
    text = f"{len(due)} task(s) due — they missed their run time."
    if any(t.skipped_if_late for t in due):
        minutes = format_interval(PROCRASTINATE_MAX_DELAY_S)
        text += (
            f" Procrastinate skips a tick older than {minutes} (its max_delay): those "
            "marked skipped will not run late, the next tick will."
        )
    st.warning(text, icon=":material/alarm:")


@dataclass(frozen=True)
class Drawing:
    """Everything the panel draws as of one step, built once per data version and step."""

    scheduler: Scheduler
    upcoming: pd.DataFrame | None
    chart_spec: dict[str, object] | None
    maintenance: pd.DataFrame | None


def drawn_at(now: datetime) -> datetime:
    return datetime.fromtimestamp(int(now.timestamp()) // DRAWN_STEP_S * DRAWN_STEP_S, UTC)


def build_drawing(state: ScheduleState, now: datetime, zone: tzinfo) -> Drawing:
    scheduler = scheduler_at(state, now)
    onetime = [t for t in scheduler.upcoming if t.schedule_type == "onetime"]
    timeline = build_timeline(scheduler.periodic, onetime, now)
    return Drawing(
        scheduler=scheduler,
        upcoming=upcoming_table(scheduler.upcoming, now, zone) if scheduler.upcoming else None,
        # A Vega-Lite dict: drawing it skips Altair's conversion and validation on every tick.
        chart_spec=vega_lite_spec(timeline_chart(timeline, now, zone)) if timeline.rows else None,
        maintenance=(
            upcoming_table(scheduler.maintenance, now, zone) if scheduler.maintenance else None
        ),
    )


def render(state: ScheduleState, app_warning: str | None = None) -> None:
    zone = columns.display_zone()
    now = drawn_at(datetime.now(UTC))
    drawing = RENDERED.get(
        "scheduler", state, (zone.key, now), lambda: build_drawing(state, now, zone)
    )
    scheduler = drawing.scheduler
    _metrics(scheduler, zone, now)
    if app_warning:
        st.text(app_warning)
    if not scheduler.upcoming and not scheduler.maintenance:
        st.info("No periodic tasks or scheduled jobs.", icon=":material/event_available:")
        return
    _due_notice(scheduler)
    if drawing.upcoming is not None:
        _table(drawing.upcoming)
        csv_download_button(
            "Download CSV",
            records_source(UpcomingTask, due_first(scheduler.upcoming)),
            "upcoming-scheduled-tasks",
        )
    if drawing.chart_spec is not None:
        st.vega_lite_chart(spec=drawing.chart_spec, width="stretch")
        st.caption(
            f"The next {TIMELINE_HOURS} hours ({zone_label(zone)}); dashed line: now; "
            "bands: runs too frequent to draw one by one."
        )
    if drawing.maintenance is not None:
        with st.expander(f"Jobdash maintenance ({len(scheduler.maintenance)})"):
            _table(drawing.maintenance)
    if scheduler.periodic and operations.may(Action.RUN_NOW):
        _periodic_controls(scheduler.periodic)


def _periodic_controls(periodic: list[UpcomingTask]) -> None:
    """Run now / disable / enable one periodic task (audited; the worker honours it)."""
    with st.expander("Run now, disable or enable a periodic task"):
        labels = [t.id for t in periodic]
        cols = st.columns([2, 1, 1, 1])
        label = cols[0].selectbox("Periodic task", labels, key="periodic_choice")
        task = next(t for t in periodic if t.id == label)
        chosen = None
        if cols[1].button("Run now", key="periodic_run", icon=":material/play_arrow:"):
            chosen = operations.run_periodic
        if task.disabled_at is None:
            if operations.may(Action.DISABLE_PERIODIC) and cols[2].button(
                "Disable", key="periodic_disable", icon=":material/pause:"
            ):
                chosen = operations.disable_periodic
        elif operations.may(Action.ENABLE_PERIODIC) and cols[2].button(
            "Enable", key="periodic_enable", icon=":material/play_circle:"
        ):
            chosen = operations.enable_periodic
        st.caption(
            "Run now defers it with its configured kwargs (marked manual in the audit log). "
            "Disabled: instrumented workers defer none of its ticks, and do not make them up "
            "when it is enabled again; other workers cannot honour it."
        )
        if chosen is not None:
            flash(chosen(label))
            st.rerun()
