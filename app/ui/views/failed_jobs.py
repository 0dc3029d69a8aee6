"""Failed jobs: filter, page, select by job id, retry / delete (one, selected, all matching),
job detail (`?job=ID`), recently deleted with restore (`?view=deleted`), CSV export.

Selection is by job id: the table is a data editor indexed by id with a checkbox column, so
when the listed ids change its ticks reset instead of sliding onto other jobs, and the ids
acted on are the ones the operator saw (the confirmation names them).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime

import pandas as pd
import psycopg
import streamlit as st

from jobdash.app.actions import jobs as actions
from jobdash.app.read.failed_jobs import (
    DELETED_HEADER,
    PAGE_SIZES,
    FailedJobFilter,
    PageCursor,
    args_as_json_text,
    count_failed_jobs,
    failed_queues_and_tasks,
    list_deleted_jobs,
    list_failed_jobs,
    load_job_detail,
)
from jobdash.app.rules.csv_format import csv_download_button
from jobdash.app.rules.text import escape_markdown, format_duration, format_timestamp
from jobdash.app.ui.widgets.downloads import failed_jobs_csv_link
from jobdash.core.database import connect
from jobdash.core.errors import ReadOnlyError, describe_error
from jobdash.core.pool import (
    DatabaseNotConfigured,
    DatabaseUnavailable,
    configured_database_url,
    connection,
)
from jobdash.core.settings import load_settings

ACTOR = "dashboard"
FLASH = "failed_jobs_flash"
CURSORS = "failed_jobs_cursors"
BULK = "failed_jobs_bulk"
PENDING = "failed_jobs_pending_confirm"
SAMPLE_IDS = 10


def clear_dashboard_caches() -> None:
    try:
        from jobdash.app.ui.data import clear_panel_caches

        clear_panel_caches()
    except Exception:  # the dashboard's caches are a courtesy; the action itself succeeded
        pass


def flash(message: str, icon: str = ":material/check_circle:") -> None:
    # A toast right before st.rerun() is lost: keep it for the next run.
    st.session_state[FLASH] = (message, icon)


def show_flash() -> None:
    pending = st.session_state.pop(FLASH, None)
    if pending:
        message, icon = pending
        st.toast(escape_markdown(message), icon=icon)
        st.caption(escape_markdown(message))


def read_only() -> bool:
    return load_settings().read_only


def run_action(action: str, ids: list[int]) -> None:
    """Run one action on ids, keep its summary for a toast, refresh the dashboard's panels."""
    func = {
        "retry": actions.retry_jobs,
        "delete": actions.delete_jobs,
        "restore": actions.restore_jobs,
    }[action]
    try:
        with connection() as conn:
            result = func(conn, ids, ACTOR)
    except ReadOnlyError as exc:
        flash(str(exc), ":material/block:")
        return
    except (DatabaseUnavailable, psycopg.Error) as exc:
        flash(
            f"{action} failed: {describe_error(exc)}",
            ":material/error:",
        )
        return
    clear_dashboard_caches()
    flash(result.summary())


def describe_ids(ids: list[int]) -> str:
    sample = ", ".join(str(i) for i in ids[:SAMPLE_IDS])
    more = f" and {len(ids) - SAMPLE_IDS:,} more" if len(ids) > SAMPLE_IDS else ""
    return f"{sample}{more}"


def _forget_pending() -> None:
    st.session_state.pop(PENDING, None)


def ask_confirmation(kind: str, action: str, payload: object) -> None:
    """Open the confirmation dialog; it stays open across reruns until confirmed or dismissed."""
    st.session_state[PENDING] = (kind, action, payload)


@st.dialog("Confirm", on_dismiss=_forget_pending)
def confirmation_dialog() -> None:
    pending = st.session_state.get(PENDING)
    if pending is None:
        return
    kind, action, payload = pending
    if kind == "ids":
        ids_confirmation(action, payload)
    else:
        all_matching_confirmation(action, *payload)


def ids_confirmation(action: str, ids: list[int]) -> None:
    verb = {"retry": "Retry", "delete": "Delete"}[action]
    noun = "job" if len(ids) == 1 else "jobs"
    st.text(f"{verb} exactly {len(ids):,} {noun}: {describe_ids(ids)}")
    if action == "delete":
        st.caption("Deleted jobs are archived and can be restored from Recently deleted.")
    left, right = st.columns(2)
    if left.button(f"{verb} {len(ids):,} {noun}", type="primary", key="confirm_ids"):
        _forget_pending()
        run_action(action, ids)
        st.rerun()
    if right.button("Cancel", key="cancel_ids"):
        _forget_pending()
        st.rerun()


@dataclass
class BulkRun:
    """An "all matching" action running on its own thread and connection."""

    action: str
    job_filter: FailedJobFilter
    total: int
    stop: threading.Event = field(default_factory=threading.Event)
    progress: actions.ActionResult | None = None
    result: actions.ActionResult | None = None
    error: str | None = None
    thread: threading.Thread | None = None

    def start(self, database_url: str) -> None:
        self.thread = threading.Thread(target=self._run, args=(database_url,), daemon=True)
        self.thread.start()

    def _run(self, database_url: str) -> None:
        func = actions.retry_all_matching if self.action == "retry" else actions.delete_all_matching
        try:
            with connect(database_url) as conn:
                self.result = func(
                    conn,
                    self.job_filter,
                    ACTOR,
                    should_stop=self.stop.is_set,
                    progress=lambda r: setattr(self, "progress", r),
                )
        except Exception as exc:  # reported on the page; what was done stays done
            self.error = describe_error(exc)
        finally:
            clear_dashboard_caches()

    @property
    def finished(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()


def all_matching_confirmation(action: str, job_filter: FailedJobFilter, count: int) -> None:
    verb = {"retry": "Retry", "delete": "Delete"}[action]
    shown = ", ".join(f"{k}={v}" for k, v in job_filter.describe().items()) or "no filter"
    st.text(f"{verb} all {count:,} failed jobs matching: {shown}")
    st.caption("Runs in batches of 1,000; you can stop it midway (what was done stays done).")
    left, right = st.columns(2)
    if left.button(f"{verb} all {count:,}", type="primary", key="confirm_all"):
        _forget_pending()
        if read_only():
            flash("read-only mode (JOBDASH_READ_ONLY=1): actions are disabled", ":material/block:")
        else:
            run = BulkRun(action, job_filter, count)
            run.start(configured_database_url())
            st.session_state[BULK] = run
        st.rerun()
    if right.button("Cancel", key="cancel_all"):
        _forget_pending()
        st.rerun()


def bulk_progress() -> None:
    """The running "all matching" action's progress and Stop; nothing when none runs."""
    if st.session_state.get(BULK) is None:
        return
    # Ticks only while a run is going, so an idle page does not rerun every second.
    st.fragment(run_every=1.0)(_bulk_progress_ticking)()


def _bulk_progress_ticking() -> None:
    run: BulkRun | None = st.session_state.get(BULK)
    if run is None:
        return
    if run.finished:
        st.session_state.pop(BULK, None)
        if run.error:
            done = run.progress.summary() if run.progress else "nothing done"
            flash(f"Stopped by an error ({run.error}). {done}", ":material/error:")
        elif run.result is not None:
            flash(run.result.summary())
        st.rerun(scope="app")
        return
    processed = run.progress.processed if run.progress else 0
    fraction = min(1.0, processed / run.total) if run.total else 0.0
    text = f"{run.action}: {processed:,} of {run.total:,} processed"
    if run.stop.is_set():
        text += " — stopping after the current batch"
    st.progress(fraction, text=text)
    if st.button("Stop", key="bulk_stop", icon=":material/stop:", disabled=run.stop.is_set()):
        run.stop.set()


def filter_form(current: FailedJobFilter, options: list[tuple[str, str, int]]) -> None:
    queues = sorted({q for q, _, _ in options} | ({current.queue} if current.queue else set()))
    tasks = sorted({t for _, t, _ in options} | ({current.task} if current.task else set()))
    with st.form("failed_filters", border=False):
        cols = st.columns([1, 1.4, 1.4, 1.2, 1, 1])
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
        since = cols[4].date_input(
            "Failed since", value=current.failed_since.date() if current.failed_since else None
        )
        until = cols[5].date_input(
            "Failed before", value=current.failed_until.date() if current.failed_until else None
        )
        applied = st.form_submit_button("Apply filters", icon=":material/filter_alt:")
    if applied:
        new = FailedJobFilter(
            queue=None if queue == "(all)" else queue,
            task=None if task == "(all)" else task,
            error_contains=error.strip() or None,
            exception_type=exc_type.strip() or None,
            failed_since=datetime.combine(since, dtime(), UTC) if since else None,
            failed_until=datetime.combine(until, dtime(), UTC) if until else None,
        )
        set_filter_params(new)
        st.session_state.pop(CURSORS, None)
        st.rerun()


def set_filter_params(job_filter: FailedJobFilter) -> None:
    keep = {k: v for k, v in st.query_params.to_dict().items() if k in ("page_size",)}
    st.query_params.from_dict(keep | job_filter.to_query_params())


def page_size() -> int:
    try:
        size = int(st.query_params.get("page_size", PAGE_SIZES[0]))
    except ValueError:
        size = PAGE_SIZES[0]
    return size if size in PAGE_SIZES else PAGE_SIZES[0]


def failed_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "select": [False] * len(rows),
            "job": [f"?job={r['id']}" for r in rows],
            "failed_at": [r["failed_at"] for r in rows],
            "queue": [r["queue_name"] for r in rows],
            "task": [r["task_name"] for r in rows],
            "exception": [r["exception_type"] or "" for r in rows],
            "error": [(r["message"] or "").splitlines()[0] if r["message"] else "" for r in rows],
            "attempts": [r["attempts"] for r in rows],
            "args": [r["args"] for r in rows],
        },
        index=pd.Index([r["id"] for r in rows], name="id"),
    )
    # An empty list makes an object column, which the checkbox column refuses.
    return frame.astype({"select": bool})


def render_list() -> None:
    job_filter = FailedJobFilter.from_query_params(st.query_params.to_dict())
    with connection() as conn:
        options = failed_queues_and_tasks(conn)
        total = count_failed_jobs(conn, job_filter)
        cursors: list[PageCursor | None] = st.session_state.setdefault(CURSORS, [None])
        page = list_failed_jobs(conn, job_filter, limit=page_size(), before=cursors[-1])
    filter_form(job_filter, options)
    writable = not read_only()
    bulk_progress()

    head = st.columns([2, 1, 1, 1])
    head[0].text(f"{total:,} failed jobs match" + ("" if job_filter.is_empty() else " the filter"))
    size = head[1].selectbox(
        "Page size", PAGE_SIZES, index=PAGE_SIZES.index(page_size()), label_visibility="collapsed"
    )
    if size != page_size():
        st.query_params["page_size"] = str(size)
        st.session_state[CURSORS] = [None]
        st.rerun()
    with head[2]:
        failed_jobs_csv_link(job_filter, "Every failed job matching the filter, not just this page")

    frame = failed_frame(page.rows)
    edited = st.data_editor(
        frame,
        key=f"failed_editor_{len(cursors)}",
        num_rows="fixed",
        disabled=[c for c in frame.columns if c != "select"] if writable else True,
        column_order=(["select"] if writable else [])
        + ["job", "failed_at", "queue", "task", "exception", "error", "attempts", "args"],
        column_config={
            "select": st.column_config.CheckboxColumn("✓", width="small"),
            "job": st.column_config.LinkColumn(
                "Job", display_text=r"job=(\d+)$", help="Open the job"
            ),
            "failed_at": st.column_config.DatetimeColumn(
                "Failed at (UTC)", format="YYYY-MM-DD HH:mm:ss", timezone="UTC"
            ),
            "args": st.column_config.TextColumn("Args"),
        },
        hide_index=True,
        width="stretch",
    )
    selected = [int(i) for i in edited.index[edited["select"]]] if len(edited) else []

    nav = st.columns([1, 1, 4])
    if len(cursors) > 1 and nav[0].button("« Newest", key="newest"):
        st.session_state[CURSORS] = [None]
        st.rerun()
    if page.next_cursor is not None and nav[1].button("Older »", key="older"):
        cursors.append(page.next_cursor)
        st.rerun()

    if not writable:
        st.info("Read-only mode (JOBDASH_READ_ONLY=1): actions are hidden.", icon=":material/lock:")
        return
    bar = st.columns(4)
    if bar[0].button(
        f"Retry selected ({len(selected)})", disabled=not selected, key="retry_selected"
    ):
        if len(selected) == 1:  # one job: no confirmation
            run_action("retry", selected)
            st.rerun()
        ask_confirmation("ids", "retry", selected)
    if bar[1].button(
        f"Delete selected ({len(selected)})", disabled=not selected, key="delete_selected"
    ):
        ask_confirmation("ids", "delete", selected)
    busy = st.session_state.get(BULK) is not None
    if bar[2].button(f"Retry all {total:,} matching", disabled=busy or not total, key="retry_all"):
        ask_confirmation("all", "retry", (job_filter, total))
    if bar[3].button(
        f"Delete all {total:,} matching", disabled=busy or not total, key="delete_all"
    ):
        ask_confirmation("all", "delete", (job_filter, total))


def render_deleted() -> None:
    with connection() as conn:
        rows = list_deleted_jobs(conn, limit=500)
    st.text(
        f"{len(rows):,} recently deleted jobs (newest first, up to 500); "
        f"kept {load_settings().archive_retention_days:g} days."
    )
    writable = not read_only()
    frame = pd.DataFrame(
        {
            "restore": [False] * len(rows),
            "job": [f"?job={r['job_id']}" for r in rows],
            "deleted_at": [r["deleted_at"] for r in rows],
            "deleted_by": [r["deleted_by"] for r in rows],
            "queue": [r["queue_name"] for r in rows],
            "task": [r["task_name"] for r in rows],
            "errors": [r["errors"] for r in rows],
            "args": [r["args"] for r in rows],
        },
        index=pd.Index([r["job_id"] for r in rows], name="id"),
    ).astype({"restore": bool})
    edited = st.data_editor(
        frame,
        key="deleted_editor",
        num_rows="fixed",
        disabled=[c for c in frame.columns if c != "restore"] if writable else True,
        column_order=(["restore"] if writable else [])
        + ["job", "deleted_at", "deleted_by", "queue", "task", "errors", "args"],
        column_config={
            "restore": st.column_config.CheckboxColumn("✓", width="small"),
            "job": st.column_config.LinkColumn("Job", display_text=r"job=(\d+)$"),
            "deleted_at": st.column_config.DatetimeColumn(
                "Deleted at (UTC)", format="YYYY-MM-DD HH:mm:ss", timezone="UTC"
            ),
        },
        hide_index=True,
        width="stretch",
    )
    chosen = [int(i) for i in edited.index[edited["restore"]]] if len(edited) else []
    cols = st.columns([1, 1, 3])
    if writable and cols[0].button(
        f"Restore selected ({len(chosen)})", disabled=not chosen, key="restore_selected"
    ):
        run_action("restore", chosen)
        st.rerun()
    with cols[1]:
        csv_download_button(
            "Download CSV",
            [
                {
                    name: r.get(key)
                    for name, key in zip(
                        DELETED_HEADER,
                        [
                            "job_id",
                            "queue_name",
                            "task_name",
                            "status",
                            "deleted_at",
                            "deleted_by",
                            "errors",
                            "args",
                        ],
                        strict=True,
                    )
                }
                for r in rows
            ],
            "recently-deleted",
        )


def event_timeline(events: list[dict]) -> pd.DataFrame:
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


def render_detail(raw_id: str) -> None:
    if st.button("Failed jobs", icon=":material/arrow_back:", key="detail_back"):
        del st.query_params["job"]
        st.rerun()
    try:
        job_id = int(raw_id)
    except ValueError:
        st.error("Not a job id.")
        return
    with connection() as conn:
        detail = load_job_detail(conn, job_id)
    if detail is None:
        st.warning(f"Job {job_id} was not found (nor in the archive of deleted jobs).")
        return
    job = detail.job
    st.subheader(f"Job {job_id}", anchor=False)
    st.text(f"Task: {job['task_name']}")
    status = "deleted (archived)" if detail.deleted_at else job["status"]
    cols = st.columns(5)
    cols[0].metric("Status", status)
    cols[1].metric("Attempts", job["attempts"])
    cols[2].metric("Priority", job["priority"])
    cols[3].text(f"Queue: {job['queue_name']}")
    cols[3].text(f"Lock: {job.get('lock') or '—'}")
    cols[4].text(f"Queueing lock: {job.get('queueing_lock') or '—'}")
    cols[4].text(f"Scheduled at: {format_timestamp(job.get('scheduled_at'))}")
    if detail.deleted_at:
        st.text(f"Deleted {format_timestamp(detail.deleted_at)} by {detail.deleted_by}.")

    if not read_only():
        act = st.columns([1, 1, 4])
        if detail.deleted_at:
            if act[0].button("Restore", key="detail_restore"):
                run_action("restore", [job_id])
                st.rerun()
        elif job["status"] == "failed":
            if act[0].button("Retry", key="detail_retry", type="primary"):
                run_action("retry", [job_id])
                st.rerun()
            if act[1].button("Delete", key="detail_delete"):
                ask_confirmation("ids", "delete", [job_id])

    st.markdown("**Attempts**")
    if not detail.errors:
        st.info(
            "No tracebacks recorded for this job "
            "(its worker was not instrumented, or it never failed)."
        )
    for error in detail.errors:
        host, pid = error.get("hostname") or "?", error.get("pid") or "?"
        where = f"{host}:{pid} (worker {error.get('worker_id') or '?'})"
        when = format_timestamp(error["recorded_at"])
        label = f"Attempt {error['attempt']} · {error['exception_type']} · {when}"
        with st.expander(escape_markdown(label), expanded=error is detail.errors[-1]):
            st.text(f"{error['exception_type']}: {error['message']}"[:20000])
            st.text(f"Worker: {where} · will retry: {'yes' if error.get('will_retry') else 'no'}")
            st.code(error["traceback"], language=None)

    st.markdown("**Events**")
    st.dataframe(
        event_timeline(detail.events),
        hide_index=True,
        column_config={
            "at": st.column_config.DatetimeColumn(
                "At (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS", timezone="UTC"
            )
        },
    )
    st.markdown("**Args**")
    st.code(args_as_json_text(job.get("args")), language="json")


def main() -> None:
    st.title("Failed jobs", anchor=False)
    show_flash()
    try:
        params = st.query_params
        if params.get("job"):
            render_detail(params["job"])
            return
        if "failed_view" not in st.session_state:
            # From the URL once; a `default` that follows the URL would change the widget's
            # identity after the first switch and could reset it mid-interaction.
            deleted = params.get("view") == "deleted"
            st.session_state["failed_view"] = "Recently deleted" if deleted else "Failed"
        view = st.segmented_control(
            "View",
            ["Failed", "Recently deleted"],
            key="failed_view",
            required=True,
            label_visibility="collapsed",
        )
        if view == "Recently deleted":
            params["view"] = "deleted"
            render_deleted()
        else:
            if params.get("view"):
                del params["view"]
            render_list()
        if st.session_state.get(PENDING) and not read_only():
            confirmation_dialog()
    except (DatabaseUnavailable, DatabaseNotConfigured, psycopg.Error) as exc:
        st.error(
            escape_markdown(describe_error(exc)),
            icon=":material/error:",
        )


main()
