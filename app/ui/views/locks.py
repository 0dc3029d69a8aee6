"""Locks: each lock of open jobs with the job holding it and the jobs waiting behind it, and
the queueing locks held by waiting jobs (a job deferred with one of those is refused)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from jobdash.app.cache import data
from jobdash.app.read.locks import WAITING_SHOWN, LocksView
from jobdash.app.rules.text import format_duration
from jobdash.app.ui import live
from jobdash.app.ui.widgets import columns, job_links
from jobdash.app.ui.widgets.downloads import csv_download_button
from jobdash.app.ui.widgets.results import data_or_notice


def lock_rows(view: LocksView, now: pd.Timestamp) -> list[dict[str, object]]:
    rows = []
    for lock in view.locks:
        running = (
            format_duration((now - pd.Timestamp(lock.holder_started_at)).total_seconds())
            if lock.holder_started_at
            else ""
        )
        more = lock.waiting - len(lock.waiting_ids)
        rows.append(
            {
                "lock": lock.lock,
                "held_by": job_links.job_label(lock.holder_id) if lock.holder_id else "",
                "task": lock.holder_task or "",
                "running for": running,
                "waiting": lock.waiting,
                "next": ", ".join(str(i) for i in lock.waiting_ids)
                + (f" (+{more})" if more > 0 else ""),
            }
        )
    return rows


def queueing_rows(view: LocksView) -> list[dict[str, object]]:
    return [
        {
            "queueing_lock": q.queueing_lock,
            "job": job_links.job_label(q.job_id),
            "task": q.task,
            "queue": q.queue,
            "scheduled_at": q.scheduled_at,
        }
        for q in view.queueing_locks
    ]


def _live() -> None:
    view: LocksView | None = data_or_notice("Locks", data.fetch(data.LOCKS))
    if view is None:
        return
    now = pd.Timestamp.now(tz="UTC")
    st.subheader("Locks", anchor=False)
    st.caption(
        "Jobs sharing a lock run one at a time: the one holding it (doing), then those waiting, "
        f"in the order a worker takes them (the next {WAITING_SHOWN} are listed)."
    )
    if view.locks:
        frame = pd.DataFrame(lock_rows(view, now))
        st.dataframe(
            frame, hide_index=True, width="stretch",
            column_config=columns.config(
                frame.columns,
                held_by=job_links.job_column("locks_holder", label="Held by job"),
                next=st.column_config.TextColumn("Next waiting jobs"),
            ),
        )  # fmt: skip
        csv_download_button("Download CSV", lock_rows(view, now), "locks", key="csv-locks")
    else:
        st.info("No open job has a lock.", icon=":material/lock_open:")
    st.subheader("Queueing locks held", anchor=False)
    st.caption(
        "A waiting job holds its queueing lock: deferring another job with it is refused "
        "until this one starts."
    )
    if view.queueing_locks:
        frame = pd.DataFrame(queueing_rows(view))
        st.dataframe(
            frame, hide_index=True, width="stretch",
            column_config=columns.config(
                frame.columns, job=job_links.job_column("locks_queueing_job")
            ),
        )  # fmt: skip
    else:
        st.info("No waiting job holds a queueing lock.", icon=":material/lock_open:")
    job_links.follow()
    if len(view.locks) >= view.limit or len(view.queueing_locks) >= view.limit:
        st.caption(f"The first {view.limit} of each are listed.")


def main() -> None:
    st.title("Locks", anchor=False)
    st.fragment(run_every=live.every(data.refresh_interval(data.LOCKS)))(_live)()


main()
