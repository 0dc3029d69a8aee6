"""What the pages' buttons do: run an action on a pooled connection under the operator's name,
make every session read afresh, and say in one line what happened.

The rules (conditional on the state the operator saw, audited, exactly once) are the actions'
own (app/actions); this module only connects them to the page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg

from jobdash.app.actions import controls, explorer
from jobdash.app.actions import jobs as actions
from jobdash.app.actions.bulk import BulkRun
from jobdash.app.actions.retry import retry_options
from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.app.read.job_filter import JobFilter
from jobdash.app.ui import data
from jobdash.app.ui.widgets.feedback import FAILED, REFUSED, Flash
from jobdash.core import pool
from jobdash.core.errors import JobdashError, ReadOnlyError, describe_error
from jobdash.core.settings import load_settings

# Who the audit log names for actions taken in the dashboard.
ACTOR = "dashboard"


def current_actor() -> str:
    return ACTOR


def read_only() -> bool:
    return load_settings().read_only


def _run(label: str, act: Callable[[psycopg.Connection, str], Any]) -> Flash:
    """Run an action (an ActionResult or a ControlResult comes back) and say what it did."""
    try:
        with pool.connection() as conn:
            result = act(conn, current_actor())
    except ReadOnlyError as exc:
        return Flash(describe_error(exc), REFUSED)
    except (JobdashError, psycopg.Error) as exc:
        return Flash(f"{label} failed: {describe_error(exc)}", FAILED)
    data.invalidate()
    if isinstance(result, controls.ControlResult) and not result.done:
        return Flash(result.summary(), REFUSED)
    return Flash(result.summary())


def retry(ids: list[int]) -> Flash:
    return _run("Retry", lambda conn, actor: actions.retry_jobs(conn, ids, actor))


def delete(ids: list[int]) -> Flash:
    return _run("Delete", lambda conn, actor: actions.delete_jobs(conn, ids, actor))


def restore(ids: list[int]) -> Flash:
    return _run("Restore", lambda conn, actor: actions.restore_jobs(conn, ids, actor))


def retry_stalled(ids: list[int]) -> Flash:
    return _run(
        "Retry stalled", lambda conn, actor: actions.retry_stalled_jobs(conn, actor, ids=ids)
    )


BULK_ACTIONS = {"retry": actions.retry_all_matching, "delete": actions.delete_all_matching}


def start_bulk(action: str, job_filter: FailedJobFilter, total: int) -> BulkRun:
    """Start "retry/delete all matching" in the background; the caller polls the run."""
    actions.ensure_writable()
    run = BulkRun(action, job_filter, total)
    run.start(
        BULK_ACTIONS[action],
        pool.configured_database_url(),
        current_actor(),
        on_finish=data.invalidate,
    )
    return run


def retry_with(
    ids: list[int],
    at: datetime | None = None,
    queue: str | None = None,
    priority: int | None = None,
) -> Flash:
    def act(conn: psycopg.Connection, actor: str) -> actions.ActionResult:
        return actions.retry_jobs(conn, ids, actor, at=at, queue=queue, priority=priority)

    return _run("Retry", act)


def cancel(ids: list[int], delete: bool = False) -> Flash:
    return _run("Cancel", lambda conn, actor: explorer.cancel_jobs(conn, ids, actor, delete=delete))


def abort(ids: list[int]) -> Flash:
    return _run("Abort", lambda conn, actor: explorer.abort_jobs(conn, ids, actor))


def run_now(ids: list[int]) -> Flash:
    return _run("Run now", lambda conn, actor: explorer.run_now(conn, ids, actor))


def reschedule(ids: list[int], at: datetime) -> Flash:
    return _run("Reschedule", lambda conn, actor: explorer.reschedule_jobs(conn, ids, actor, at=at))


def delete_finished(ids: list[int]) -> Flash:
    return _run("Delete", lambda conn, actor: explorer.delete_finished_jobs(conn, ids, actor))


def start_jobs_bulk(action: str, job_filter: JobFilter, total: int, **options: Any) -> BulkRun:
    """Start an all-matching action of the Jobs page in the background (see start_bulk).
    `options`: delete (cancel); at, queue, priority (retry)."""
    actions.ensure_writable()
    if action == "retry":
        options = {"retry": retry_options(**options)}
    scan = load_settings().search_scan_jobs
    def bulk(conn: psycopg.Connection, chosen: JobFilter, actor: str, **kw: Any) -> Any:
        return explorer.all_matching(conn, action, chosen, actor, scan=scan, **options, **kw)

    run = BulkRun(action, job_filter, total)
    run.start(
        bulk,
        pool.configured_database_url(),
        current_actor(),
        on_finish=data.invalidate,
    )
    return run


def clear_queue(queue: str, total: int) -> BulkRun:
    """Cancel every ready job of the queue, in batches, in the background."""
    return start_jobs_bulk("cancel", JobFilter(state="ready", queue=queue), total)


def pause_queue(queue: str) -> Flash:
    return _run("Pause", lambda conn, actor: controls.pause_queue(conn, queue, actor))


def resume_queue(queue: str) -> Flash:
    return _run("Resume", lambda conn, actor: controls.resume_queue(conn, queue, actor))


def run_periodic(label: str) -> Flash:
    return _run("Run now", lambda conn, actor: controls.run_periodic_now(conn, label, actor))


def disable_periodic(label: str) -> Flash:
    return _run("Disable", lambda conn, actor: controls.disable_periodic(conn, label, actor))


def enable_periodic(label: str) -> Flash:
    return _run("Enable", lambda conn, actor: controls.enable_periodic(conn, label, actor))
