"""Queues: per queue its counts, latency, throughput in the last hour, whether it is paused,
and which workers listen to it and which of them honour a pause; pause, resume, clear."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from jobdash.app.cache import data
from jobdash.app.read.queues import LiveWorker, QueueOverview, QueuesView
from jobdash.app.rules.text import escape_markdown, format_duration, format_timestamp
from jobdash.app.ui import live, operations
from jobdash.app.ui.widgets import bulk_progress, columns, confirm, job_links
from jobdash.app.ui.widgets.confirm import Confirmation
from jobdash.app.ui.widgets.downloads import csv_download_button
from jobdash.app.ui.widgets.feedback import REFUSED, Flash, flash, show_flash
from jobdash.app.ui.widgets.results import data_or_notice
from jobdash.core.auth.identity import Action
from jobdash.core.errors import JobdashError, describe_error

PAUSE_NOTE = (
    "A pause is honoured by instrumented Jobdash workers (`jobdash worker`, "
    "run_instrumented_worker): they take no job of a paused queue from their next poll "
    "(5 s by default); jobs already running finish. A worker that is not instrumented cannot "
    "honour it and keeps taking the queue's jobs."
)


def _workers(workers: list[LiveWorker]) -> str:
    return ", ".join(w.label for w in workers) or "—"


def queue_rows(view: QueuesView) -> list[dict[str, object]]:
    zone = columns.display_zone()
    rows = []
    for q in view.queues:
        paused = (
            f"paused {format_timestamp(q.paused_at, zone)} by {q.paused_by}" if q.paused_at else ""
        )
        rows.append(
            {
                "queue": q.name,
                "paused": paused,
                "ready": q.ready,
                "scheduled": q.scheduled,
                "doing": q.doing,
                "failed": q.failed,
                "latency": format_duration(q.latency_s) if q.latency_s is not None else "—",
                "succeeded_last_hour": q.succeeded_last_hour,
                "failed_last_hour": q.failed_last_hour,
                "listening": _workers(q.listening)
                + (f" (+{q.unknown_workers} not instrumented?)" if q.unknown_workers else ""),
                "honour_pauses": _workers(q.honouring),
                "jobs": "Open",
            }
        )
    return rows


def _table(view: QueuesView) -> None:
    frame = pd.DataFrame(queue_rows(view))
    drawn = [q.name for q in view.queues]  # the rows as drawn: a click names its row by position
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config=columns.config(
            frame.columns,
            latency=st.column_config.TextColumn("Latency", help="Age of the oldest ready job"),
            succeeded_last_hour=st.column_config.NumberColumn("Succeeded, last hour"),
            failed_last_hour=st.column_config.NumberColumn("Failed, last hour"),
            listening=st.column_config.TextColumn("Workers listening"),
            honour_pauses=st.column_config.TextColumn("Of them, honour pauses"),
            jobs=job_links.page_column(
                "queues_jobs", "Jobs", "jobs", lambda: [{"queue": name} for name in drawn]
            ),
        ),
    )
    job_links.follow()
    if not view.history_recorded:
        st.caption(
            "Throughput: no history recorded in the last 5 minutes (no instrumented worker "
            "runs the rollup), so it is left empty."
        )
    csv_download_button("Download CSV", queue_rows(view), "queues")


def _clear_confirmation(queue: QueueOverview) -> Confirmation:
    def run() -> Flash | None:
        try:
            bulk_progress.keep(operations.clear_queue(queue.name, queue.ready))
        except JobdashError as exc:
            return Flash(describe_error(exc), REFUSED)
        return None

    return Confirmation(
        title="Clear ready jobs",
        text=f"Cancel every ready job of queue {queue.name!r} (about {queue.ready:,}).",
        caption="Procrastinate's cancel, in batches of 1,000, audited; you can stop it midway. "
        "Scheduled and running jobs are left alone.",
        confirm_label=f"Cancel {queue.ready:,} ready jobs",
        run=run,
        confirm_key="confirm_clear",
        cancel_key="cancel_clear",
    )


def _controls(view: QueuesView) -> None:
    names = [q.name for q in view.queues]
    if not names:
        return
    st.subheader("Pause, resume, clear", anchor=False)
    cols = st.columns([2, 1, 1, 1])
    name = cols[0].selectbox("Queue", names, key="queue_choice")
    queue = next(q for q in view.queues if q.name == name)
    if queue.paused_at is None:
        if operations.may(Action.PAUSE_QUEUE) and cols[1].button(
            "Pause", key="pause_queue", icon=":material/pause:"
        ):
            flash(operations.pause_queue(name))
            st.rerun()
    elif operations.may(Action.RESUME_QUEUE) and cols[1].button(
        "Resume", key="resume_queue", icon=":material/play_arrow:"
    ):
        flash(operations.resume_queue(name))
        st.rerun()
    busy = bulk_progress.running() is not None
    if operations.may(Action.CANCEL) and cols[2].button(
        f"Clear ready ({queue.ready:,})", key="clear_queue", disabled=busy or not queue.ready
    ):
        confirm.request(_clear_confirmation(queue))
    parts = []
    if queue.not_honouring:
        parts.append(
            f"{len(queue.not_honouring)} listening worker(s) do not honour pauses "
            f"({_workers(queue.not_honouring)})"
        )
    if queue.unknown_workers:
        parts.append(f"{queue.unknown_workers} worker(s) are not instrumented")
    if queue.paused_at is not None and parts:
        text = f"Queue {name!r} is paused, but {' and '.join(parts)}: they may still take its jobs."
        st.warning(escape_markdown(text), icon=":material/warning:")
    st.caption(PAUSE_NOTE)


def _live() -> None:
    view: QueuesView | None = data_or_notice("Queues", data.fetch(data.QUEUES))
    if view is None:
        return
    if not view.queues:
        st.info("No queues yet: no jobs, no paused queue, no worker.", icon=":material/inbox:")
        return
    _table(view)


def main() -> None:
    st.title("Queues", anchor=False)
    show_flash(caption=True)
    st.fragment(run_every=live.every(data.refresh_interval(data.QUEUES)))(_live)()
    bulk_progress.show()
    if not operations.may(Action.PAUSE_QUEUE):
        st.info(operations.why_not(Action.PAUSE_QUEUE), icon=":material/lock:")
    else:
        view = data.fetch(data.QUEUES).data
        if view is not None:
            _controls(view)
    confirm.show_pending()


main()
