"""Jobs: every job in every state. Live state counts, filters kept in the URL (deep links),
keyset pages, selection by job id, actions for one job, the selected ones or all matching
(batches, progress, Stop), and the detail of any job (`?job=ID`) with "why isn't it running?".

A filter no index serves searches the newest JOBDASH_SEARCH_SCAN_JOBS candidates per page and
says so; "Older »" searches on from there.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import streamlit as st

from jobdash.app.cache import data
from jobdash.app.read.job_filter import STATE_WORDS, STATES, JobFilter
from jobdash.app.read.jobs import JobCount, JobPage, JobRow, StateCounts
from jobdash.app.rules.text import escape_markdown
from jobdash.app.ui import live, operations
from jobdash.app.ui.widgets import (
    bulk_progress,
    columns,
    confirm,
    job_page,
    job_table,
    list_pages,
)
from jobdash.app.ui.widgets.confirm import Confirmation
from jobdash.app.ui.widgets.downloads import csv_download_button
from jobdash.app.ui.widgets.feedback import show_flash
from jobdash.app.ui.widgets.job_page import (
    ABORT_NOTE,
    CAPTIONS,
    VERBS,
    ids_confirmation,
    retry_options_form,
)
from jobdash.app.ui.widgets.results import data_or_notice
from jobdash.core.auth.identity import Action
from jobdash.core.errors import ActionError, FilterError, describe_error
from jobdash.core.settings import load_settings

PAGE = "jobs"
CURSORS = "jobs_cursors"
PAGE_SIZES = (50, 100, 500)
CSV_LIMIT = 10_000
LIST_COLUMNS = [
    "job", "state", "queue", "task", "priority", "attempts", "scheduled_at", "deferred_at",
    "finished_at", "lock", "args",
]  # fmt: skip
# Which all-matching actions a state filter offers (what the operator sees is in that state).
BULK_BY_STATE = {
    "ready": (Action.CANCEL,),
    "scheduled": (Action.RUN_JOB_NOW, Action.CANCEL),
    "doing": (Action.ABORT,),
    "failed": (Action.RETRY, Action.DELETE),
    "succeeded": (Action.DELETE,),
    "cancelled": (Action.DELETE,),
    "aborted": (Action.DELETE,),
}


def current_filter() -> JobFilter:
    params = {k: v for k, v in st.query_params.to_dict().items() if k not in ("job", "page_size")}
    return JobFilter.from_query_params(params, load_settings().redact_args)


def set_filter(job_filter: JobFilter) -> None:
    list_pages.set_filter_params(job_filter.to_query_params())
    st.session_state.pop(CURSORS, None)


def _state_counts(current: JobFilter) -> None:
    """A button per state with its count; a click filters by that state (the other filters
    stay)."""
    counts: StateCounts | None = data_or_notice("State counts", data.fetch(data.STATE_COUNTS))
    if counts is None:
        return
    cols = st.columns(len(STATES))
    for col, state in zip(cols, STATES, strict=True):
        chosen = current.state == state
        if col.button(
            f"{STATE_WORDS[state]} · {counts.text(state)}",
            key=f"state_{state}",
            type="primary" if chosen else "secondary",
            width="stretch",
        ):
            set_filter(dataclasses.replace(current, state=None if chosen else state))
            st.rerun(scope="app")
    if counts.estimated:
        st.caption(
            "≈: the planner's estimate (EXPLAIN), not a count: no index holds those states. "
            "The others are exact."
        )


def filter_form(current: JobFilter) -> None:
    def text(value: object) -> str:
        return "" if value in (None, ()) else str(value)

    params = current.to_query_params()
    with st.form("job_filters", border=False):
        row = st.columns([1, 1, 1.4, 1, 1, 1])
        state = row[0].selectbox(
            "State", ["(all)", *STATES], format_func=lambda s: STATE_WORDS.get(s, s),
            index=STATES.index(current.state) + 1 if current.state else 0,
        )  # fmt: skip
        queue = row[1].text_input("Queue", value=text(current.queue))
        task = row[2].text_input("Task", value=text(current.task))
        ids = row[3].text_input("Job id(s)", value=params.get("ids", ""), help="12 or 12, 13, 14")
        worker = row[4].text_input("Worker id", value=text(current.worker))
        lock = row[5].text_input("Lock", value=text(current.lock))
        row = st.columns([1, 1, 1, 1, 1, 1, 1])
        qlock = row[0].text_input("Queueing lock", value=text(current.queueing_lock))
        pmin = row[1].text_input("Priority ≥", value=text(current.priority_min))
        pmax = row[2].text_input("Priority ≤", value=text(current.priority_max))
        times = {}
        for col, name, label in zip(
            row[3:],
            ("deferred_since", "deferred_until", "finished_since", "finished_until"),
            ("Deferred since", "Deferred before", "Finished since", "Finished before"),
            strict=True,
        ):
            times[name] = col.text_input(
                label, value=params.get(name, ""), help="ISO 8601, UTC unless it says: 2024-05-01"
            )
        args = st.text_input(
            "Args contain",
            value=text(current.args),
            help='JSON containment, {"customer_id": 42}, or key=value (customer.id=42). '
            "Redacted keys cannot be searched.",
        )
        applied = st.form_submit_button("Apply filters", icon=":material/filter_alt:")
    if applied:
        raw = {
            "state": None if state == "(all)" else state, "queue": queue, "task": task,
            "ids": ids, "worker": worker, "lock": lock, "queueing_lock": qlock,
            "priority_min": pmin, "priority_max": pmax, "args": args, **times,
        }  # fmt: skip
        try:
            chosen = JobFilter.from_query_params(
                {k: v for k, v in raw.items() if v}, load_settings().redact_args
            )
        except FilterError as exc:
            st.warning(f"Filter not applied — {escape_markdown(str(exc))}", icon=":material/block:")
            return
        set_filter(chosen)
        st.rerun()


def jobs_frame(rows: list[JobRow]) -> pd.DataFrame:
    frame = job_table.frame(
        [r["id"] for r in rows],
        "select",
        {
            "state": [STATE_WORDS.get(r["state"], r["state"]) for r in rows],
            "queue": [r["queue_name"] for r in rows],
            "task": [r["task_name"] for r in rows],
            "priority": [r["priority"] for r in rows],
            "attempts": [r["attempts"] for r in rows],
            "scheduled_at": [r["scheduled_at"] for r in rows],
            "deferred_at": [r["deferred_at"] for r in rows],
            "finished_at": [r["finished_at"] for r in rows],
            "lock": [r["lock"] or "" for r in rows],
            "args": [r["args"] for r in rows],
        },
    )
    for name in ("scheduled_at", "deferred_at", "finished_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def _table(frame: pd.DataFrame, key: str) -> list[int]:
    return job_table.selectable(
        frame,
        key,
        check="select",
        shown=LIST_COLUMNS,
        writable=any(operations.may(action) for action in VERBS),
        deferred_at=columns.time_column("Deferred at"),
        finished_at=columns.time_column("Finished at"),
        args=st.column_config.TextColumn("Args", help="Redacted keys show ••••"),
    )


def count_text(job_filter: JobFilter) -> str:
    if job_filter.is_empty() or job_filter.only_state():
        counts: StateCounts | None = data.fetch(data.STATE_COUNTS).data
        if counts is None:
            return "Jobs"
        if job_filter.state:
            return f"{counts.text(job_filter.state)} {STATE_WORDS[job_filter.state].lower()} jobs"
        total = sum(counts.counts.values())
        return f"{'≈ ' if counts.estimated else ''}{total:,} jobs"
    found: JobCount | None = data.fetch(data.JOBS_COUNT, job_filter).data
    return found.text() if found else "Jobs matching the filter"


def _searched_note(page: JobPage) -> None:
    s = page.searched
    if s is None or s.complete:
        return
    list_pages.searched_note(
        f"{s.count:,} {escape_markdown(s.walks)} (down to job {s.lowest_id})",
        len(page.rows),
        "this filter",
        f"{page.scan:,} jobs",
    )


def _all_confirmation(
    action: Action, job_filter: JobFilter, total: int, options: dict[str, Any]
) -> Confirmation:
    verb = VERBS[action]
    shown = bulk_progress.filter_words(job_filter.describe())
    extra = options if action == Action.RETRY else {}
    return bulk_progress.all_confirmation(
        verb,
        f"{verb} all jobs matching: {shown} (about {total:,})",
        CAPTIONS[action] + " Runs in batches of 1,000; you can stop it midway.",
        f"{verb} all matching",
        lambda: operations.start_jobs_bulk(action, job_filter, total, **extra),
    )


def _total(job_filter: JobFilter) -> int:
    if job_filter.only_state():
        counts: StateCounts | None = data.fetch(data.STATE_COUNTS).data
        return counts.counts.get(job_filter.state or "", 0) if counts else 0
    found: JobCount | None = data.fetch(data.JOBS_COUNT, job_filter).data
    if found is None:
        return 0
    return found.matched if found.exact else max(found.matched, found.estimate or 0)


def _action_bar(job_filter: JobFilter, selected: list[int]) -> None:
    options = (retry_options_form("list_retry") or {}) if operations.may(Action.RETRY) else {}
    offered = [action for action in VERBS if operations.may(action)]
    bar = st.columns(5)
    for column, action in zip(bar, offered, strict=False):
        if job_table.selected_button(column, VERBS[action], action, selected):
            confirm.request(ids_confirmation(action, selected, options))
    if job_filter.state and job_filter.state in BULK_BY_STATE:
        bulk = st.columns(5)
        choices = [a for a in BULK_BY_STATE[job_filter.state] if operations.may(a)]
        for column, action in zip(bulk, choices, strict=False):
            if bulk_progress.all_button(column, f"{VERBS[action]} all matching", action):
                confirm.request(_all_confirmation(action, job_filter, _total(job_filter), options))
    st.caption(
        "Actions skip, and name, the jobs that are not in the state they need. " + ABORT_NOTE
    )


def render_list() -> None:
    try:
        job_filter = current_filter()
    except FilterError as exc:
        list_pages.filter_refused(exc, clear=lambda: set_filter(JobFilter()))
        return
    st.fragment(run_every=live.every(data.refresh_interval(data.STATE_COUNTS)))(_state_counts)(
        job_filter
    )
    filter_form(job_filter)
    bulk_progress.show()
    cursors: list[int | None] = st.session_state.setdefault(CURSORS, [None])
    page = list_pages.fetch_page("Jobs", data.JOBS_PAGE, job_filter, PAGE_SIZES, cursors[-1])
    if page is None:
        return
    head = st.columns([3, 1, 1])
    head[0].text(count_text(job_filter))
    list_pages.page_size_picker(head[1], PAGE_SIZES, CURSORS)
    with head[2]:
        csv_download_button(
            "Download CSV", lambda: data.export_jobs(job_filter, CSV_LIMIT), "jobs",
            help=f"Up to {CSV_LIMIT:,} jobs matching the filter, args redacted",
        )  # fmt: skip
    selected = _table(jobs_frame(page.rows), f"jobs_editor_{len(cursors)}")
    _searched_note(page)
    list_pages.pager(cursors, page.next_before)
    if not any(operations.may(action) for action in VERBS):
        st.info(operations.why_not(Action.CANCEL), icon=":material/lock:")
        return
    _action_bar(job_filter, selected)


def main() -> None:
    st.title("Jobs", anchor=False)
    show_flash(caption=True)
    try:
        if st.query_params.get("job"):
            job_page.render_detail(st.query_params["job"], back="Jobs")
        else:
            render_list()
    except ActionError as exc:
        st.error(escape_markdown(describe_error(exc)))
    confirm.show_pending()


main()
