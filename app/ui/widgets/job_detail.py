"""One job in full: status, queue, locks, every recorded attempt's error, events, args.

Everything from the job is shown as text (st.text, st.code, table cells), never as markdown.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from jobdash.app.read.job_detail import EventRow, JobDetail, args_as_json_text
from jobdash.app.read.job_filter import STATE_WORDS
from jobdash.app.rules.text import escape_markdown, format_duration, format_timestamp
from jobdash.app.rules.tracebacks import split_traceback
from jobdash.app.ui.widgets import columns
from jobdash.app.ui.widgets.feedback import Flash
from jobdash.core.jsontypes import Json

# Reads the job's args as stored (ui.operations.unredacted_args bound to the job): the args, or
# None and why not.
Reveal = Callable[[], tuple[Json, Flash | None]]

# Shown in full up to this many characters: a 1 MB message must not freeze the browser.
MAX_MESSAGE_CHARS = 20_000


def event_timeline(events: list[EventRow]) -> pd.DataFrame:
    rows = []
    for i, event in enumerate(events):
        nxt = events[i + 1]["at"] if i + 1 < len(events) else None
        took = (nxt - event["at"]).total_seconds() if nxt and event["at"] else None
        rows.append(
            {
                "event": event["type"],
                "at": event["at"],
                "until next": format_duration(took) if took is not None else "",
            }
        )
    return pd.DataFrame(rows)


def summary(
    job_id: int, detail: JobDetail, state: str | None = None, worker: str | None = None
) -> None:
    """`state`: the job's state as the Jobs page names it (else Procrastinate's status);
    `worker`: who runs or ran it."""
    job = detail.job
    st.subheader(f"Job {job_id}", anchor=False)
    st.text(f"Task: {job['task_name']}")
    if detail.deleted_at:
        status = "deleted (archived)"
    else:
        status = STATE_WORDS.get(state, state) if state else job["status"]
    cols = st.columns(5)
    cols[0].metric("Status", status)
    cols[1].metric("Attempts", job["attempts"])
    cols[2].metric("Priority", job["priority"])
    cols[3].text(f"Queue: {job['queue_name']}")
    cols[3].text(f"Lock: {job.get('lock') or '—'}")
    cols[4].text(f"Queueing lock: {job.get('queueing_lock') or '—'}")
    zone = columns.display_zone()
    cols[4].text(f"Scheduled at: {format_timestamp(job.get('scheduled_at'), zone)}")
    if worker:
        cols[3].text(f"Worker: {worker}")
    if detail.deleted_at:
        st.text(f"Deleted {format_timestamp(detail.deleted_at, zone)} by {detail.deleted_by}.")


def attempts(detail: JobDetail) -> None:
    st.markdown("**Attempts**")
    if not detail.errors:
        st.info(
            "No tracebacks recorded for this job "
            "(its worker was not instrumented, or it never failed)."
        )
    for error in detail.errors:
        host, pid = error.get("hostname") or "?", error.get("pid") or "?"
        where = f"{host}:{pid} (worker {error.get('worker_id') or '?'})"
        when = format_timestamp(error["recorded_at"], columns.display_zone())
        label = f"Attempt {error['number']} · {error['exception_type']} · {when}"
        with st.expander(escape_markdown(label), expanded=error is detail.errors[-1]):
            st.text(f"{error['exception_type']}: {error['message']}"[:MAX_MESSAGE_CHARS])
            st.text(f"Worker: {where} · will retry: {'yes' if error.get('will_retry') else 'no'}")
            traceback(error["traceback"])


def traceback(text: str) -> None:
    """The team's frames in full; each run of library frames folded behind one click."""
    for segment in split_traceback(text):
        if not segment.folded:
            st.code(segment.text, language=None)
            continue
        noun = "frame" if segment.frames == 1 else "frames"
        label = f"{segment.frames} {noun} from {', '.join(segment.libraries)}"
        with st.popover(escape_markdown(label), icon=":material/unfold_more:"):
            st.code(segment.text, language=None)


def args_block(detail: JobDetail, reveal: Reveal | None = None) -> None:
    """The args as every loader gives them (redacted); with `reveal` (admins only), a button
    showing them as stored for this one run: the next rerun hides them again."""
    st.markdown("**Args**")
    if reveal is not None and st.button(
        "Show unredacted args", key="detail_unredacted", icon=":material/visibility:"
    ):
        args, problem = reveal()
        if problem is None:
            st.caption(
                "Unredacted, as stored: this look is in the audit log; hidden again on the "
                "next rerun."
            )
            st.code(args_as_json_text(args), language="json")
            return
        st.error(escape_markdown(problem.message), icon=problem.icon)
    st.code(args_as_json_text(detail.job.get("args")), language="json")


def events_and_args(detail: JobDetail, reveal: Reveal | None = None) -> None:
    st.markdown("**Events**")
    st.dataframe(
        event_timeline(detail.events),
        hide_index=True,
        column_config=columns.config(
            ["event", "until next"], at=columns.time_column("At", precise=True)
        ),
    )
    args_block(detail, reveal)


def show(
    job_id: int,
    detail: JobDetail,
    actions: Callable[[], None] | None = None,
    state: str | None = None,
    worker: str | None = None,
    why_waiting: str | None = None,
    reveal: Reveal | None = None,
) -> None:
    """The whole detail; `actions` draws the buttons that fit the job's state (if allowed);
    `why_waiting`: the one line on why a waiting job has not started; `reveal`: only for
    those who may see unredacted args (see args_block)."""
    summary(job_id, detail, state, worker)
    if why_waiting:
        st.info(f"Why isn't it running? {escape_markdown(why_waiting)}", icon=":material/help:")
    if actions is not None:
        actions()
    attempts(detail)
    events_and_args(detail, reveal)
