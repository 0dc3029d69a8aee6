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
from jobdash.app.read import alerts
from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.app.ui import data
from jobdash.app.ui.widgets.feedback import DONE, FAILED, REFUSED, Flash
from jobdash.core import pool
from jobdash.core.auth.identity import Action, Identity, require
from jobdash.core.errors import JobdashError, PermissionDenied, ReadOnlyError, describe_error
from jobdash.core.settings import load_ops_settings, load_settings
from jobdash.jobs.alerts.engine import send_test_message

# Who the audit log names for actions taken in the dashboard.
ACTOR = "dashboard"


def current_actor() -> str:
    return ACTOR


def read_only() -> bool:
    return load_settings().read_only


def _run(label: str, act: Callable[[psycopg.Connection, str], actions.ActionResult]) -> Flash:
    try:
        with pool.connection() as conn:
            result = act(conn, current_actor())
    except ReadOnlyError as exc:
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
