"""Failed jobs: filter, page, select by job id, retry / delete (one, selected, all matching),
the job page (`?job=ID`, as on Jobs), recently deleted with restore (`?view=deleted`), CSV export.

Selection is by job id (app/ui/widgets/job_table.py): the ids acted on are the ones the
operator saw, and the confirmation names them.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from jobdash.app.cache import data
from jobdash.app.read.failed_jobs import (
    DELETED_HEADER,
    PAGE_SIZES,
    DeletedJobRow,
    FailedCount,
    FailedJobFilter,
    FailedListRow,
    FailedPage,
    PageCursor,
)
from jobdash.app.rules.text import zone_label
from jobdash.app.rules.time_bounds import bound_from_form, form_from_bound
from jobdash.app.ui import operations
from jobdash.app.ui.widgets import (
    bulk_progress,
    columns,
    confirm,
    job_page,
    job_table,
    list_pages,
)
from jobdash.app.ui.widgets.confirm import Confirmation
from jobdash.app.ui.widgets.downloads import csv_download_button, failed_jobs_csv_link
from jobdash.app.ui.widgets.feedback import flash, show_flash
from jobdash.app.ui.widgets.results import data_or_notice
from jobdash.core.auth.identity import Action
from jobdash.core.errors import FilterError
from jobdash.core.settings import load_settings

CURSORS = "failed_jobs_cursors"
DELETED_LIMIT = 500
LIST_COLUMNS = ["job", "failed_at", "queue", "task", "exception", "error", "attempts", "args"]
DELETED_COLUMNS = ["job", "deleted_at", "deleted_by", "queue", "task", "errors", "args"]
VERBS = {Action.RETRY: "Retry", Action.DELETE: "Delete"}


def _ids_confirmation(action: Action, ids: list[int]) -> Confirmation:
    return confirm.ids_confirmation(
        VERBS[action],
        ids,
        "Deleted jobs are archived and can be restored from Recently deleted."
        if action == Action.DELETE
        else None,
        lambda: operations.retry(ids) if action == Action.RETRY else operations.delete(ids),
    )


def _all_matching_confirmation(
    action: Action, job_filter: FailedJobFilter, count: FailedCount
) -> Confirmation:
    verb = VERBS[action]
    number = _number(count)
    total = count.number
    return bulk_progress.all_confirmation(
        verb,
        f"{verb} all{number} failed jobs matching: "
        + bulk_progress.filter_words(job_filter.describe()),
        "Runs in batches of 1,000; you can stop it midway (what was done stays done).",
        f"{verb} all{number}",
        lambda: operations.start_bulk(action, job_filter, total),
    )


def _time_range(current: FailedJobFilter) -> tuple[datetime | None, datetime | None]:
    """Failed since / until: a date and an optional time each, in the display zone (a date
    alone is the whole day: failed until today includes today's failures)."""
    zone = columns.display_zone()
    since_day, since_time = form_from_bound(current.failed_since, zone, upper=False)
    until_day, until_time = form_from_bound(current.failed_until, zone, upper=True)
    cols = st.columns(4)
    time_help = f"{zone_label(zone)}; empty: the whole day"
    since_day = cols[0].date_input("Failed since", value=since_day)
    since_time = cols[1].time_input(
        f"at ({zone_label(zone)})", value=since_time, step=60, help=time_help
    )
    until_day = cols[2].date_input("Failed until", value=until_day)
    until_time = cols[3].time_input(
        f"before ({zone_label(zone)})", value=until_time, step=60, help=time_help
    )
    return (
        bound_from_form(since_day, since_time, zone, upper=False),
        bound_from_form(until_day, until_time, zone, upper=True),
    )


def set_filter(job_filter: FailedJobFilter) -> None:
    """The URL holds the filter; the pages start again from the newest."""
    list_pages.set_filter_params(job_filter.to_query_params())
    st.session_state.pop(CURSORS, None)


def filter_form(current: FailedJobFilter, options: list[tuple[str, str, int]]) -> None:
    queues = sorted({q for q, _, _ in options} | ({current.queue} if current.queue else set()))
    tasks = sorted({t for _, t, _ in options} | ({current.task} if current.task else set()))
    with st.form("failed_filters", border=False):
        cols = st.columns([1, 1.4, 1.4, 1.2])
        queue = cols[0].selectbox(
            "Queue",
            ["(all)", *queues],
            index=(queues.index(current.queue) + 1) if current.queue else 0,
        )
        task = cols[1].selectbox(
            "Task", ["(all)", *tasks], index=(tasks.index(current.task) + 1) if current.task else 0
        )
        error = cols[2].text_input("Error text contains", value=current.error_contains or "")
        exc_type = cols[3].text_input("Exception type", value=current.exception_type or "")
        since, until = _time_range(current)
        applied = st.form_submit_button("Apply filters", icon=":material/filter_alt:")
    if applied:
        new = FailedJobFilter(
            queue=None if queue == "(all)" else queue,
            task=None if task == "(all)" else task,
            error_contains=error.strip() or None,
            exception_type=exc_type.strip() or None,
            failed_since=since,
            failed_until=until,
        )
        set_filter(new)
        st.rerun()


def failed_frame(rows: list[FailedListRow]) -> pd.DataFrame:
    return job_table.frame(
        [r["id"] for r in rows],
        "select",
        {
            "failed_at": [r["failed_at"] for r in rows],
            "queue": [r["queue_name"] for r in rows],
            "task": [r["task_name"] for r in rows],
            "exception": [r["exception_type"] or "" for r in rows],
            "error": [(r["message"] or "").splitlines()[0] if r["message"] else "" for r in rows],
            "attempts": [r["attempts"] for r in rows],
            "args": [r["args"] for r in rows],
        },
    )


def _selectable_table(frame: pd.DataFrame, key: str, check: str, shown: list[str]) -> list[int]:
    writable = operations.may(Action.RETRY) or operations.may(Action.RESTORE)
    return job_table.selectable(frame, key, check=check, shown=shown, writable=writable)


def _list_header(job_filter: FailedJobFilter, count: FailedCount) -> None:
    head = st.columns([2, 1, 1, 1])
    head[0].text(count.text(filtered=not job_filter.is_empty()))
    list_pages.page_size_picker(head[1], PAGE_SIZES, CURSORS)
    with head[2]:
        failed_jobs_csv_link(job_filter, "Every failed job matching the filter, not just this page")


def _number(count: FailedCount) -> str:
    """ " 12", " ≈ 2,300", or nothing (none among the newest searched; older ones may match)."""
    if count.exact:
        return f" {count.number:,}"
    return f" ≈ {count.number:,}" if count.number else ""


def _action_bar(job_filter: FailedJobFilter, selected: list[int], count: FailedCount) -> None:
    bar = st.columns(4)
    if job_table.selected_button(bar[0], VERBS[Action.RETRY], Action.RETRY, selected):
        if len(selected) == 1:  # one job: no confirmation
            flash(operations.retry(selected))
            st.rerun()
        confirm.request(_ids_confirmation(Action.RETRY, selected))
    if job_table.selected_button(bar[1], VERBS[Action.DELETE], Action.DELETE, selected):
        confirm.request(_ids_confirmation(Action.DELETE, selected))
    for column, action in zip(bar[2:], (Action.RETRY, Action.DELETE), strict=True):
        label = f"{VERBS[action]} all{_number(count)} matching"
        nothing = count.exact and not count.number
        if bulk_progress.all_button(column, label, action, disabled=nothing):
            confirm.request(_all_matching_confirmation(action, job_filter, count))


def render_list() -> None:
    try:
        job_filter = FailedJobFilter.from_query_params(st.query_params.to_dict())
    except FilterError as exc:
        list_pages.filter_refused(exc, clear=lambda: set_filter(FailedJobFilter()))
        return
    options = data.fetch(data.FAILED_FILTER_OPTIONS).data or []
    filter_form(job_filter, options)
    bulk_progress.show()
    cursors: list[PageCursor | None] = st.session_state.setdefault(CURSORS, [None])
    page = list_pages.fetch_page(
        "Failed jobs", data.FAILED_PAGE, job_filter, PAGE_SIZES, cursors[-1]
    )
    if page is None:
        return
    count = page.count or FailedCount(0)
    _list_header(job_filter, count)
    selected = _selectable_table(
        failed_frame(page.rows), f"failed_editor_{len(cursors)}", "select", LIST_COLUMNS
    )
    _searched_note(page)
    list_pages.pager(cursors, page.next_cursor)
    if not operations.may(Action.RETRY):
        st.info(operations.why_not(Action.RETRY), icon=":material/lock:")
        return
    _action_bar(job_filter, selected, count)


def _searched_note(page: FailedPage) -> None:
    if page.searched is None:
        return
    list_pages.searched_note(
        f"{page.searched:,} failed jobs",
        len(page.rows),
        "an error filter",
        f"{page.scan or 0:,} failed jobs",
    )


def deleted_frame(rows: list[DeletedJobRow]) -> pd.DataFrame:
    return job_table.frame(
        [r["job_id"] for r in rows],
        "restore",
        {
            "deleted_at": [r["deleted_at"] for r in rows],
            "deleted_by": [r["deleted_by"] for r in rows],
            "queue": [r["queue_name"] for r in rows],
            "task": [r["task_name"] for r in rows],
            "errors": [r["errors"] for r in rows],
            "args": [r["args"] for r in rows],
        },
    )


DELETED_ROW_KEYS = [
    "job_id", "queue_name", "task_name", "status", "deleted_at", "deleted_by", "errors", "args",
]  # fmt: skip


def render_deleted() -> None:
    rows = data_or_notice("Recently deleted", data.fetch(data.DELETED_JOBS, DELETED_LIMIT))
    if rows is None:
        return
    st.text(
        f"{len(rows):,} recently deleted jobs (newest first, up to {DELETED_LIMIT}); "
        f"kept {load_settings().archive_retention_days:g} days."
    )
    chosen = _selectable_table(deleted_frame(rows), "deleted_editor", "restore", DELETED_COLUMNS)
    cols = st.columns([1, 1, 3])
    if operations.may(Action.RESTORE) and job_table.selected_button(
        cols[0], "Restore", Action.RESTORE, chosen
    ):
        flash(operations.restore(chosen))
        st.rerun()
    with cols[1]:
        csv_rows = [
            {name: r.get(key) for name, key in zip(DELETED_HEADER, DELETED_ROW_KEYS, strict=True)}
            for r in rows
        ]
        csv_download_button("Download CSV", csv_rows, "recently-deleted")


def _view() -> str:
    if "failed_view" not in st.session_state:
        # From the URL once; a `default` that follows the URL would change the widget's
        # identity after the first switch and could reset it mid-interaction.
        deleted = st.query_params.get("view") == "deleted"
        st.session_state["failed_view"] = "Recently deleted" if deleted else "Failed"
    view = st.segmented_control(
        "View",
        ["Failed", "Recently deleted"],
        key="failed_view",
        required=True,
        label_visibility="collapsed",
    )
    if view == "Recently deleted":
        st.query_params["view"] = "deleted"
    elif st.query_params.get("view"):
        del st.query_params["view"]
    return str(view)


def main() -> None:
    st.title("Failed jobs", anchor=False)
    show_flash(caption=True)
    if st.query_params.get("job"):
        job_page.render_detail(st.query_params["job"], back="Failed jobs")
    elif _view() == "Recently deleted":
        render_deleted()
    else:
        render_list()
    confirm.show_pending()


main()
