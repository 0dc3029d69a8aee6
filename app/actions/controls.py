"""Operator controls on queues and periodic tasks: pause / resume a queue, disable / enable a
periodic task, run a periodic task now. Audited in the same transaction, conditional (pausing
a paused queue is reported, not repeated), for the UI and the CLI alike.

Pauses and disables are rows (migrations/007_controls.sql) that instrumented workers read once
per poll interval (jobs/instrumentation/controls.py); a worker that is not instrumented
cannot honour them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from jobdash.app.actions.jobs import INSERT_AUDIT, _ensure_idle, authorize
from jobdash.app.actions.retry import QUEUEING_LOCK_INDEX, queueing_lock_reason, todo_holders
from jobdash.core.auth.identity import Action, Identity
from jobdash.core.errors import ActionError

MAX_NAME_CHARS = 128  # procrastinate_jobs.queue_name and task_name are varchar(128)

PAUSE = """
INSERT INTO jobdash_queue_pauses (queue_name, paused_by) VALUES (%(queue)s, %(actor)s)
ON CONFLICT (queue_name) DO NOTHING
RETURNING queue_name
"""
RESUME = "DELETE FROM jobdash_queue_pauses WHERE queue_name = %(queue)s RETURNING paused_at"
PAUSED = "SELECT paused_at, paused_by FROM jobdash_queue_pauses WHERE queue_name = %(queue)s"

PERIODIC = """
SELECT queue_name, configured_kwargs FROM jobdash_periodic_tasks
WHERE task_name = %(task)s AND periodic_id = %(periodic_id)s
"""
DISABLE = """
INSERT INTO jobdash_periodic_disabled (task_name, periodic_id, disabled_by)
VALUES (%(task)s, %(periodic_id)s, %(actor)s)
ON CONFLICT (task_name, periodic_id) DO NOTHING
RETURNING task_name
"""
ENABLE = """
DELETE FROM jobdash_periodic_disabled
WHERE task_name = %(task)s AND periodic_id = %(periodic_id)s
RETURNING disabled_at
"""
DISABLED = """
SELECT disabled_at, disabled_by FROM jobdash_periodic_disabled
WHERE task_name = %(task)s AND periodic_id = %(periodic_id)s
"""
# Procrastinate's own defer (the function its JobManager and periodic deferrer call). Not
# procrastinate_defer_periodic_job_v2: a manual run is not a tick, so it must not move the
# periodic task's last deferred tick.
DEFER = """
SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(
    %(queue)s, %(task)s, %(priority)s, %(lock)s, %(queueing_lock)s, %(args)s::jsonb,
    NULL::timestamptz
)]::procrastinate_job_to_defer_v1[]))
"""
_PERIODIC_LABEL = re.compile(r"^(?P<task>[^\[\]]+)(?:\[(?P<pid>[^\[\]]*)\])?$")


@dataclass(frozen=True)
class ControlResult:
    """What a control did: `done`, or why not (`reason`); `job_id` of a job it deferred."""

    action: Action
    target: str
    done: bool
    reason: str | None = None
    job_id: int | None = None

    def summary(self) -> str:
        words = {
            Action.PAUSE_QUEUE: f"Paused queue {self.target!r}: instrumented workers take none "
            "of its jobs from their next poll; running jobs finish",
            Action.RESUME_QUEUE: f"Resumed queue {self.target!r}",
            Action.DISABLE_PERIODIC: f"Disabled periodic task {self.target!r}",
            Action.ENABLE_PERIODIC: f"Enabled periodic task {self.target!r}",
            Action.RUN_NOW: f"Deferred periodic task {self.target!r} now as job {self.job_id}",
        }
        return words[self.action] if self.done else f"Nothing done: {self.reason}"


def checked_name(kind: str, name: object) -> str:
    text = str(name).strip() if name is not None else ""
    if not text or "\x00" in text or len(text) > MAX_NAME_CHARS:
        raise ActionError(f"not a {kind} name: {text[:40]!r}")
    return text


def parse_periodic(label: str) -> tuple[str, str]:
    """ "task" or "task[periodic_id]" (as the scheduler lists them) → (task, periodic_id)."""
    match = _PERIODIC_LABEL.match(label.strip())
    if not match:
        raise ActionError(f"not a periodic task: {label[:60]!r} (use TASK or TASK[PERIODIC_ID])")
    return checked_name("task", match["task"]), (match["pid"] or "").strip()


def _label(task: str, periodic_id: str) -> str:
    return f"{task}[{periodic_id}]" if periodic_id else task


def _audit(
    conn: psycopg.Connection,
    actor: str,
    result: ControlResult,
    target: Mapping[str, Any],
    details: Mapping[str, Any] | None = None,
) -> None:
    extra = {**(details or {})}
    if result.reason:
        extra["reason"] = result.reason
    conn.execute(
        INSERT_AUDIT,
        {
            "actor": actor,
            "action": result.action,
            "job_ids": [result.job_id] if result.job_id is not None else [],
            "filter": Jsonb(dict(target)),
            "done": int(result.done),
            "skipped": int(not result.done),
            "details": Jsonb(extra),
        },
    )


def _start(conn: psycopg.Connection, actor: Identity, action: Action) -> str:
    """Read-only mode and the actor's role first; the name the audit log records."""
    name = authorize(actor, action)
    _ensure_idle(conn)
    return name


def pause_queue(conn: psycopg.Connection, queue: str, actor: Identity) -> ControlResult:
    name = _start(conn, actor, Action.PAUSE_QUEUE)
    queue = checked_name("queue", queue)
    with conn.transaction():
        done = conn.execute(PAUSE, {"queue": queue, "actor": name}).fetchone() is not None
        reason = None
        if not done:
            row = conn.execute(PAUSED, {"queue": queue}).fetchone()
            since = f" since {row[0].isoformat(timespec='seconds')} by {row[1]}" if row else ""
            reason = f"queue {queue!r} is already paused{since}"
        result = ControlResult(Action.PAUSE_QUEUE, queue, done, reason)
        _audit(conn, name, result, {"queue": queue})
    return result


def resume_queue(conn: psycopg.Connection, queue: str, actor: Identity) -> ControlResult:
    name = _start(conn, actor, Action.RESUME_QUEUE)
    queue = checked_name("queue", queue)
    with conn.transaction():
        row = conn.execute(RESUME, {"queue": queue}).fetchone()
        reason = None if row else f"queue {queue!r} is not paused"
        result = ControlResult(Action.RESUME_QUEUE, queue, row is not None, reason)
        details = {"paused_since": row[0].isoformat()} if row else None
        _audit(conn, name, result, {"queue": queue}, details)
    return result


def _published(
    conn: psycopg.Connection, task: str, periodic_id: str
) -> tuple[str, dict[str, Any]] | None:
    """(queue, configured kwargs as the worker published them, JSON) of a periodic task."""
    row = conn.execute(PERIODIC, {"task": task, "periodic_id": periodic_id}).fetchone()
    return (row[0], row[1] or {}) if row else None


def _unknown(task: str, periodic_id: str) -> str:
    return (
        f"no periodic task {_label(task, periodic_id)!r} is published "
        "(an instrumented worker publishes its App's periodic tasks when it starts)"
    )


def disable_periodic(conn: psycopg.Connection, label: str, actor: Identity) -> ControlResult:
    """Instrumented workers' periodic deferrer skips its ticks until it is enabled again."""
    name = _start(conn, actor, Action.DISABLE_PERIODIC)
    task, periodic_id = parse_periodic(label)
    target = {"task": task, "periodic_id": periodic_id}
    with conn.transaction():
        if _published(conn, task, periodic_id) is None:
            raise ActionError(_unknown(task, periodic_id))
        done = conn.execute(DISABLE, target | {"actor": name}).fetchone() is not None
        reason = None
        if not done:
            row = conn.execute(DISABLED, target).fetchone()
            since = f" since {row[0].isoformat(timespec='seconds')} by {row[1]}" if row else ""
            reason = f"{_label(task, periodic_id)!r} is already disabled{since}"
        result = ControlResult(Action.DISABLE_PERIODIC, _label(task, periodic_id), done, reason)
        _audit(conn, name, result, target)
    return result


def enable_periodic(conn: psycopg.Connection, label: str, actor: Identity) -> ControlResult:
    name = _start(conn, actor, Action.ENABLE_PERIODIC)
    task, periodic_id = parse_periodic(label)
    target = {"task": task, "periodic_id": periodic_id}
    with conn.transaction():
        row = conn.execute(ENABLE, target).fetchone()
        reason = None if row else f"{_label(task, periodic_id)!r} is not disabled"
        label = _label(task, periodic_id)
        result = ControlResult(Action.ENABLE_PERIODIC, label, row is not None, reason)
        _audit(conn, name, result, target)
    return result


def run_periodic_now(conn: psycopg.Connection, label: str, actor: Identity) -> ControlResult:
    """Defer the periodic task now with its configured kwargs (as published by the worker)
    and `timestamp` = now, as its deferrer would for a tick; marked manual in the audit log.
    Task-level defaults its worker did not publish (a priority or lock set on @app.task and
    not in @app.periodic) are not applied."""
    name = _start(conn, actor, Action.RUN_NOW)
    task, periodic_id = parse_periodic(label)
    target = {"task": task, "periodic_id": periodic_id}
    with conn.transaction():
        published = _published(conn, task, periodic_id)
        if published is None:
            raise ActionError(_unknown(task, periodic_id))
        queue_name, kwargs = published
        args = dict(kwargs.get("task_kwargs") or {})
        args["timestamp"] = int(time.time())
        queueing_lock = kwargs.get("queueing_lock")
        params = {
            "queue": kwargs.get("queue") or queue_name,
            "task": task,
            "priority": int(kwargs.get("priority") or 0),
            "lock": kwargs.get("lock"),
            "queueing_lock": queueing_lock,
            "args": Jsonb(args),
        }
        job_id: int | None = None
        reason: str | None = None
        try:
            with conn.transaction():
                row = conn.execute(DEFER, params).fetchone()
            job_id = int(row[0]) if row else None
        except psycopg.errors.UniqueViolation as exc:
            lock = queueing_lock
            if exc.diag.constraint_name != QUEUEING_LOCK_INDEX or not isinstance(lock, str):
                raise
            reason = queueing_lock_reason(lock, todo_holders(conn, [lock]).get(lock))
        result = ControlResult(
            Action.RUN_NOW, _label(task, periodic_id), job_id is not None, reason, job_id
        )
        _audit(conn, name, result, target, {"manual": True, "queue": params["queue"]})
    return result
