"""Worker Health: totals, one card per worker, and the stalled jobs with "Retry stalled".

"Retry stalled" acts on the job ids listed when the operator opened the confirmation (never
on what a later tick lists), through the same action the CLI uses; each job is re-checked
under lock, so a job whose worker came back meanwhile is skipped and reported.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
import streamlit as st

from jobdash.app.read.models import StalledJob, WorkerHealth, WorkerRow
from jobdash.app.rules.text import format_duration, format_timestamp
from jobdash.app.ui import operations
from jobdash.app.ui.widgets import columns, confirm
from jobdash.app.ui.widgets.confirm import describe_ids
from jobdash.app.ui.widgets.downloads import csv_download_button, records_source
from jobdash.app.ui.widgets.feedback import show_flash
from jobdash.core.auth.identity import Action

TITLE = "Worker Health"
# Beyond this many workers the cards would bury the page: the rest go in a table.
MAX_CARDS = 12
CARDS_PER_ROW = 2
STALLED_ROWS_SHOWN = 6


def worker_label(worker: WorkerRow) -> str:
    """ "host:pid", or "worker #id" for a worker that was not instrumented."""
    if worker.hostname is not None and worker.pid is not None:
        return f"{worker.hostname}:{worker.pid}"
    if worker.hostname is not None:
        return worker.hostname
    return f"worker #{worker.worker_id}"


def is_instrumented(worker: WorkerRow) -> bool:
    return worker.hostname is not None or worker.pid is not None


def queues_text(worker: WorkerRow) -> str:
    queues = worker.queues
    return ", ".join(queues) if queues else "all queues"


def jobs_text(worker: WorkerRow) -> str:
    return f"{worker.jobs}/{worker.max_jobs}" if worker.max_jobs is not None else str(worker.jobs)


def cpu_text(worker: WorkerRow) -> str:
    return "—" if worker.cpu_percent is None else f"{worker.cpu_percent:.0f} %"


def memory_text(worker: WorkerRow) -> str:
    return "—" if worker.memory_mb is None else f"{worker.memory_mb:,.0f} MB"


def ordered_workers(workers: list[WorkerRow]) -> list[WorkerRow]:
    """Unhealthy first (they need attention), then by label."""
    return sorted(workers, key=lambda w: (w.healthy, worker_label(w)))


def worker_table(workers: list[WorkerRow]) -> pd.DataFrame:
    rows = [
        {
            "Worker": worker_label(w),
            "Worker id": w.worker_id,
            "Healthy": w.healthy,
            "Name": w.worker_name or "",
            "Queues": queues_text(w) if is_instrumented(w) else "",
            "Jobs": jobs_text(w),
            "CPU": cpu_text(w),
            "Memory": memory_text(w),
            "Heartbeat age": format_duration(w.heartbeat_age_s),
        }
        for w in workers
    ]
    return pd.DataFrame(rows)


def stalled_table(health: WorkerHealth) -> pd.DataFrame:
    rows = [
        {"Job id": j.id, "Queue": j.queue, "Task": j.task, "Worker id": j.worker_id}
        for j in health.stalled
    ]
    return pd.DataFrame(rows, columns=["Job id", "Queue", "Task", "Worker id"])


def _card(worker: WorkerRow) -> None:
    with st.container(border=True):
        name = worker.worker_name
        st.text(f"{worker_label(worker)} ({name})" if name else worker_label(worker))
        if worker.healthy:
            st.badge("healthy", icon=":material/check_circle:", color="green")
        else:
            st.badge("unhealthy", icon=":material/error:", color="red")
        if is_instrumented(worker):
            st.text(
                f"jobs {jobs_text(worker)} · CPU {cpu_text(worker)} · memory {memory_text(worker)}"
                f"\nqueues: {queues_text(worker)}"
                f"\nheartbeat {format_duration(worker.heartbeat_age_s)} ago"
            )
        else:
            st.text(
                f"jobs {jobs_text(worker)} · not instrumented"
                f"\nheartbeat {format_duration(worker.heartbeat_age_s)} ago"
            )


def render(health: WorkerHealth) -> None:
    show_flash()
    cols = st.columns(4)
    cols[0].metric("Workers", f"{health.total_workers:,}")
    cols[1].metric("Active", f"{health.active_workers:,}", help="Workers with a recent heartbeat")
    cols[2].metric("Jobs in progress", f"{health.jobs_in_progress:,}")
    cols[3].metric(
        "Stalled jobs",
        f"{health.stalled_jobs:,}",
        help="Doing jobs whose worker is gone or unhealthy",
    )
    workers = ordered_workers(health.workers)
    if not workers:
        st.info("No workers are running.", icon=":material/info:")
    shown = workers[:MAX_CARDS]
    for start in range(0, len(shown), CARDS_PER_ROW):
        row = st.columns(CARDS_PER_ROW)
        for column, worker in zip(row, shown[start : start + CARDS_PER_ROW], strict=False):
            with column:
                _card(worker)
    if len(workers) > MAX_CARDS:
        with st.expander(f"All {len(workers):,} workers"):
            st.dataframe(worker_table(workers), hide_index=True, width="stretch")
    if workers:
        csv_download_button("Download CSV", records_source(WorkerRow, workers), "workers")
    if health.stalled:
        st.text(f"Stalled jobs ({health.stalled_jobs:,}):")
        # A fixed height only once the list is long: a short list stays short.
        height: int | Literal["auto"] = 250 if len(health.stalled) > STALLED_ROWS_SHOWN else "auto"
        st.dataframe(stalled_table(health), hide_index=True, width="stretch", height=height)
        left, right = st.columns(2)
        with left:
            csv_download_button(
                "Download CSV", records_source(StalledJob, health.stalled), "stalled-jobs"
            )
        if operations.may(Action.RETRY_STALLED) and right.button(
            f"Retry stalled ({len(health.stalled):,})",
            key="retry_stalled",
            icon=":material/replay:",
            help="Put these jobs back in their queue (their worker is gone or silent)",
        ):
            ids = [j.id for j in health.stalled]
            confirm.request(retry_stalled_confirmation(ids, health.stalled_jobs))
    if workers:
        last = max(w.last_heartbeat for w in workers)
        st.caption(f"Latest heartbeat {format_timestamp(last, columns.display_zone())}")
    confirm.show_pending()


def confirmation_text(ids: list[int], stalled_total: int) -> str:
    noun = "job" if len(ids) == 1 else "jobs"
    text = f"Retry exactly {len(ids):,} stalled {noun}: {describe_ids(ids)}."
    if stalled_total > len(ids):
        text += f" ({stalled_total:,} are stalled; the rest are not listed — run it again.)"
    return text


def retry_stalled_confirmation(ids: list[int], stalled_total: int) -> confirm.Confirmation:
    return confirm.Confirmation(
        title="Retry stalled jobs",
        text=confirmation_text(ids, stalled_total),
        caption="Each job goes back to its queue to run again (attempts + 1). A job whose "
        "worker came back meanwhile is skipped.",
        confirm_label=f"Retry {len(ids):,}",
        run=lambda: operations.retry_stalled(ids),
        confirm_key="confirm_retry_stalled",
        cancel_key="cancel_retry_stalled",
    )
