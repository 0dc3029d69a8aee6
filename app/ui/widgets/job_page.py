"""The page of one job (`?job=ID`), the same from Jobs and from Failed jobs: its detail and
the actions its state allows, each confirmed where it destroys or interrupts."""

from __future__ import annotations

from typing import Any

import streamlit as st

from jobdash.app.cache import data
from jobdash.app.read.failed_jobs import parse_utc
from jobdash.app.read.job_facts import JobView
from jobdash.app.read.job_filter import TERMINAL_STATES
from jobdash.app.ui import operations
from jobdash.app.ui.widgets import confirm, job_detail
from jobdash.app.ui.widgets.confirm import Confirmation
from jobdash.app.ui.widgets.feedback import flash
from jobdash.app.ui.widgets.results import data_or_notice
from jobdash.core.auth.identity import Action

ABORT_NOTE = (
    "Abort asks the job's worker to stop it, as Procrastinate does: an async task is cancelled "
    "at once; a sync task stops only if it checks context.should_abort(). The job shows "
    "“abort requested” until its worker acts."
)
VERBS = {
    Action.CANCEL: "Cancel", Action.ABORT: "Abort", Action.RUN_JOB_NOW: "Run now",
    Action.DELETE: "Delete", Action.RETRY: "Retry",
}  # fmt: skip
CAPTIONS = {
    Action.CANCEL: "Waiting jobs become cancelled (Procrastinate's cancel); others are skipped.",
    Action.ABORT: ABORT_NOTE,
    Action.DELETE: "Finished jobs are archived, then deleted; restore them from Failed jobs → "
    "Recently deleted or with `jobdash restore`.",
    Action.RUN_JOB_NOW: "Scheduled jobs become ready now.",
    Action.RETRY: "Failed jobs run again (Procrastinate's retry), with the retry options below.",
}


def retry_options_form(key: str) -> dict[str, Any] | None:
    """Retry options typed by the operator (None after a warning when one is not usable)."""
    with st.expander("Retry options"):
        cols = st.columns(3)
        at = cols[0].text_input(
            "Run at", key=f"{key}_at", help="ISO 8601 (UTC unless it says); empty: now"
        )
        queue = cols[1].text_input("On queue", key=f"{key}_queue", help="empty: the same queue")
        priority = cols[2].text_input("Priority", key=f"{key}_priority", help="empty: the same")
    options: dict[str, Any] = {"at": None, "queue": queue.strip() or None, "priority": None}
    if at.strip():
        options["at"] = parse_utc(at)
        if options["at"] is None:
            st.warning("Run at: not an ISO 8601 time.")
            return None
    if priority.strip():
        try:
            options["priority"] = int(priority)
        except ValueError:
            st.warning("Priority: not a whole number.")
            return None
    return options


def ids_confirmation(action: Action, ids: list[int], options: dict[str, Any]) -> Confirmation:
    runs = {
        Action.CANCEL: lambda: operations.cancel(ids),
        Action.ABORT: lambda: operations.abort(ids),
        Action.RUN_JOB_NOW: lambda: operations.run_now(ids),
        Action.DELETE: lambda: operations.delete_finished(ids),
        Action.RETRY: lambda: operations.retry_with(ids, **options),
    }
    return confirm.ids_confirmation(VERBS[action], ids, CAPTIONS[action], runs[action])


def _actions(job_id: int, view: JobView) -> None:
    may = operations.may
    if view.state == "deleted":
        if may(Action.RESTORE) and st.button("Restore", key="detail_restore"):
            flash(operations.restore([job_id]))
            st.rerun()
        return
    act = st.columns([1, 1, 1, 3])
    state = view.state
    if state in ("ready", "scheduled"):
        if may(Action.CANCEL) and act[0].button("Cancel", key="detail_cancel"):
            confirm.request(ids_confirmation(Action.CANCEL, [job_id], {}))
        if (
            state == "scheduled"
            and may(Action.RUN_JOB_NOW)
            and act[1].button("Run now", key="detail_run_now", type="primary")
        ):
            flash(operations.run_now([job_id]))
            st.rerun()
        if not may(Action.RESCHEDULE):
            return
        with act[3]:
            at = st.text_input(
                "Reschedule to", key="detail_at", help="ISO 8601, UTC unless it says"
            )
            if st.button("Reschedule", key="detail_reschedule"):
                when = parse_utc(at)
                if when is None:
                    st.warning("Reschedule: not an ISO 8601 time.")
                else:
                    flash(operations.reschedule([job_id], when))
                    st.rerun()
    elif state == "doing":
        if may(Action.ABORT) and act[0].button("Abort", key="detail_abort"):
            confirm.request(ids_confirmation(Action.ABORT, [job_id], {}))
        st.caption(ABORT_NOTE)
    elif state == "abort_requested":
        st.caption("Abort requested: its worker stops it at its next abort check. " + ABORT_NOTE)
    if state == "failed" and may(Action.RETRY):
        options = retry_options_form("detail_retry")
        if act[0].button("Retry", key="detail_retry", type="primary") and options is not None:
            flash(operations.retry_with([job_id], **options))
            st.rerun()
    if (
        state in TERMINAL_STATES
        and may(Action.DELETE)
        and act[1].button("Delete", key="detail_delete")
    ):
        confirm.request(ids_confirmation(Action.DELETE, [job_id], {}))


def _reveal(job_id: int) -> job_detail.Reveal | None:
    """The "Show unredacted args" read for admins; None hides the button for everyone else."""
    if not operations.may(Action.VIEW_UNREDACTED_ARGS):
        return None
    return lambda: operations.unredacted_args(job_id)


def render_detail(raw_id: str, back: str) -> None:
    """The job `raw_id` (from `?job=`), with a button back to the list `back` names."""
    if st.button(back, icon=":material/arrow_back:", key="detail_back"):
        del st.query_params["job"]
        st.rerun()
    try:
        job_id = int(raw_id)
    except ValueError:
        st.error("Not a job id.")
        return
    result = data.fetch(data.JOB_VIEW, job_id)
    if result.data is None and not result.is_stale:
        st.warning(f"Job {job_id} was not found (nor in the archive of deleted jobs).")
        return
    view: JobView | None = data_or_notice(f"Job {job_id}", result)
    if view is None:
        return
    job_detail.show(
        job_id,
        view.detail,
        actions=lambda: _actions(job_id, view),
        state=view.state,
        worker=view.worker,
        why_waiting=view.why_waiting,
        reveal=_reveal(job_id),
    )
