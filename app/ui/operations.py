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

from jobdash.app.actions import controls, explorer, unredacted
from jobdash.app.actions import jobs as actions
from jobdash.app.actions.bulk import BulkRun
from jobdash.app.actions.retry import retry_options
from jobdash.app.cache import data
from jobdash.app.read import alerts
from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.app.read.job_filter import JobFilter
from jobdash.app.ui.auth import identity_from_streamlit
from jobdash.app.ui.widgets.feedback import DONE, FAILED, REFUSED, Flash
from jobdash.core import pool
from jobdash.core.alerts.engine import send_test_message
from jobdash.core.auth.identity import PERMISSIONS, Action, Identity, allowed, require
from jobdash.core.errors import JobdashError, PermissionDenied, ReadOnlyError, describe_error
from jobdash.core.jsontypes import Json
from jobdash.core.settings import load_ops_settings, load_settings


def current_actor() -> Identity:
    """Who is acting: the signed-in person (the page stopped earlier for anyone else)."""
    identity = identity_from_streamlit()
    if not isinstance(identity, Identity):
        raise PermissionDenied("sign in to act on jobs")
    return identity


def why_not(action: Action) -> str:
    """One line saying why this action's buttons are hidden."""
    if read_only():
        return "Read-only mode (JOBDASH_READ_ONLY=1): actions are hidden."
    identity = identity_from_streamlit()
    role = identity.role if isinstance(identity, Identity) else "no"
    return f"Your role ({role}) cannot {PERMISSIONS[action].words}: actions are hidden."


def may(action: Action) -> bool:
    """Whether to offer this action's buttons (the action itself checks again)."""
    identity = identity_from_streamlit()
    return isinstance(identity, Identity) and allowed(identity, action, read_only=read_only())


def read_only() -> bool:
    return load_settings().read_only


def _run(label: str, act: Callable[[psycopg.Connection, Identity], Any]) -> Flash:
    """Run an action (an ActionResult or a ControlResult comes back) and say what it did."""
    try:
        actor = current_actor()
        with pool.connection() as conn:
            result = act(conn, actor)
    except (ReadOnlyError, PermissionDenied) as exc:
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


BULK_ACTIONS = {
    Action.RETRY: actions.retry_all_matching,
    Action.DELETE: actions.delete_all_matching,
}


def start_bulk(action: Action, job_filter: FailedJobFilter, total: int) -> BulkRun:
    """Start "retry/delete all matching" in the background; the caller polls the run."""
    actor = current_actor()
    actions.authorize(actor, action)  # refuse before a thread starts, not inside it
    run = BulkRun(action, job_filter, total)
    run.start(BULK_ACTIONS[action], pool.configured_database_url(), actor, data.invalidate)
    return run


def retry_with(
    ids: list[int],
    at: datetime | None = None,
    queue: str | None = None,
    priority: int | None = None,
) -> Flash:
    def act(conn: psycopg.Connection, actor: Identity) -> actions.ActionResult:
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


def start_jobs_bulk(action: Action, job_filter: JobFilter, total: int, **options: Any) -> BulkRun:
    """Start an all-matching action of the Jobs page in the background (see start_bulk).
    `options`: delete (cancel); at, queue, priority (retry)."""
    actor = current_actor()
    audited = Action.DELETE if action == Action.CANCEL and options.get("delete") else action
    actions.authorize(actor, audited)  # refuse before a thread starts, not inside it
    if action == Action.RETRY:
        options = {"retry": retry_options(**options)}
    scan = load_settings().search_scan_jobs

    def bulk(conn: psycopg.Connection, chosen: JobFilter, who: Identity, **kw: Any) -> Any:
        return explorer.all_matching(conn, action, chosen, who, scan=scan, **options, **kw)

    run = BulkRun(action, job_filter, total)
    run.start(bulk, pool.configured_database_url(), actor, data.invalidate)
    return run


def clear_queue(queue: str, total: int) -> BulkRun:
    """Cancel every ready job of the queue, in batches, in the background."""
    return start_jobs_bulk(Action.CANCEL, JobFilter(state="ready", queue=queue), total)


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


def unredacted_args(job_id: int) -> tuple[Json, Flash | None]:
    """The job's args as stored (admin only, audited, never cached); or a Flash saying why not."""
    try:
        actor = current_actor()
        with pool.connection() as conn:
            args = unredacted.read_unredacted_args(conn, job_id, actor)
    except (ReadOnlyError, PermissionDenied) as exc:
        return None, Flash(describe_error(exc), REFUSED)
    except (JobdashError, psycopg.Error) as exc:
        return None, Flash(f"Show unredacted args failed: {describe_error(exc)}", FAILED)
    data.invalidate(data.AUDIT_LOG)
    return args, None


def test_alert(rule_name: str, identity: Identity | None) -> Flash:
    """Send a test message of one alert rule to its channels (operator role)."""
    try:
        require(identity, Action.TEST_ALERT, read_only=read_only())
        config, problem = alerts.configured_alerts()
        rule = config.rule(rule_name) if config else None
        if config is None or rule is None:
            return Flash(problem or f"no alert rule named {rule_name!r}", FAILED)
        with pool.connection() as conn:
            sent = send_test_message(
                conn,
                config,
                rule,
                healthy_s=load_settings().heartbeat_healthy_s,
                public_url=load_ops_settings().public_url,
            )
    except (ReadOnlyError, PermissionDenied) as exc:
        return Flash(describe_error(exc), REFUSED)
    except (JobdashError, psycopg.Error) as exc:
        return Flash(f"Test message failed: {describe_error(exc)}", FAILED)
    data.invalidate(data.ALERTS)
    if not sent:
        return Flash(f"{rule_name}: the rule has no channel to send to", FAILED)
    failed = [d for d in sent if not d.delivered]
    words = ", ".join(
        f"{d.channel}: {'delivered' if d.delivered else f'not delivered ({d.error})'}" for d in sent
    )
    return Flash(f"Test message of {rule_name} — {words}", FAILED if failed else DONE)
