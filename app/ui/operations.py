"""What the pages' buttons do: run an action on a pooled connection under the operator's name,
make every session read afresh, and say in one line what happened.

The rules (conditional on the state the operator saw, audited, exactly once) are the actions'
own (app/actions); this module only connects them to the page.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from jobdash.app.actions import jobs as actions
from jobdash.app.actions.bulk import BulkRun
from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.app.ui import data
from jobdash.app.ui.auth import identity_from_streamlit
from jobdash.app.ui.widgets.feedback import FAILED, REFUSED, Flash
from jobdash.core import pool
from jobdash.core.auth.identity import PERMISSIONS, Action, Identity, allowed
from jobdash.core.errors import JobdashError, PermissionDenied, ReadOnlyError, describe_error
from jobdash.core.settings import load_settings


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


def _run(
    label: str, act: Callable[[psycopg.Connection, Identity], actions.ActionResult]
) -> Flash:
    try:
        actor = current_actor()
        with pool.connection() as conn:
            result = act(conn, actor)
    except (ReadOnlyError, PermissionDenied) as exc:
        return Flash(describe_error(exc), REFUSED)
    except (JobdashError, psycopg.Error) as exc:
        return Flash(f"{label} failed: {describe_error(exc)}", FAILED)
    data.invalidate()
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
