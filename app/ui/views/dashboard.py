"""The live dashboard: four panels refreshing on their own intervals (a fragment per interval)."""

from __future__ import annotations

import streamlit as st

from jobdash.app.cache import data
from jobdash.app.read.replica import replica_text
from jobdash.app.read.schedule import ScheduleState
from jobdash.app.rules.text import format_interval, zone_label
from jobdash.app.ui import live
from jobdash.app.ui.panels import failed_jobs, queue_stats, scheduler, worker_health
from jobdash.app.ui.panels.frame import show_panel
from jobdash.app.ui.widgets.columns import display_zone
from jobdash.core.settings import load_ops_settings, load_settings


def _render_scheduler(loaded: ScheduleState) -> None:
    app_path = load_settings().app_path
    warning = data.app_periodic_definitions(app_path)[1] if app_path else None
    scheduler.render(loaded, app_warning=warning)


def _queue_stats_panel() -> None:
    show_panel(data.QUEUE_STATS, queue_stats.TITLE, queue_stats.render)


def _worker_health_panel() -> None:
    show_panel(data.WORKER_HEALTH, worker_health.TITLE, worker_health.render)


def _scheduler_panel() -> None:
    show_panel(data.SCHEDULER, scheduler.TITLE, _render_scheduler)


def _failed_jobs_panel() -> None:
    show_panel(data.FAILED_JOBS, failed_jobs.TITLE, failed_jobs.render)


def _live_panels() -> None:
    left, right = st.columns(2)
    with left:
        _queue_stats_panel()
    with right:
        _worker_health_panel()
    _scheduler_panel()
    _failed_jobs_panel()


def footer_text(intervals: dict[str, float]) -> str:
    parts = [
        f"queue statistics every {format_interval(intervals['queue_stats'])}",
        f"worker health every {format_interval(intervals['worker_health'])}",
        f"scheduler every {format_interval(intervals['scheduler'])}",
        f"failed jobs every {format_interval(intervals['failed_jobs'])}",
    ]
    return "Refresh: " + " · ".join(parts) + f". Times are {zone_label(display_zone())}."


def _replica_footer() -> None:
    if load_ops_settings().read_database_url:
        result = data.fetch(data.REPLICA_STATUS)
        st.caption(replica_text(result.data, result.error))


def main() -> None:
    settings = load_settings()
    intervals = {source.name: data.refresh_interval(source, settings) for source in data.PANELS}
    st.title("Background Jobs Dashboard", anchor=False)
    st.caption("Real-time monitoring of queue, workers, and scheduler")
    # One fragment, so one timer per tab, at the shortest interval: Streamlit 1.67 ends a
    # fragment's run early when another fragment's tick of the same tab arrives during it, so
    # panels with timers of their own fell behind now and then (docs/benchmarks-viewers.md).
    # Each panel's data still refreshes on its own interval (the cache's time to live); a
    # tick in between draws it again from the same data, mostly from the render cache.
    st.fragment(run_every=live.every(min(intervals.values())))(_live_panels)()
    st.divider()
    st.caption(footer_text(intervals))
    _replica_footer()


main()
