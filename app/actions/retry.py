"""Retrying jobs through Procrastinate's own `procrastinate_retry_job_v2`, whatever their
queueing locks.

Procrastinate allows one *todo* job per queueing lock (the unique partial index
procrastinate_jobs_queueing_lock_idx_v1) while any number of failed jobs may share one. So of
the locked jobs, the first (lowest id) of each queueing lock is retried and the others are
skipped with a reason naming the job that holds the lock: a todo job already waiting, or the
one retried just before. Everything here runs inside the caller's transaction, after the
caller locked the rows (SELECT … FOR UPDATE in id order); nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, TypeGuard

import psycopg

from jobdash.core.errors import ActionError
from jobdash.core.rows import fetch_all

# The failed jobs among the ids, locked in id order, with their queueing locks.
LOCK_FAILED_FOR_RETRY = """
SELECT id, queueing_lock, false AS abort_requested
FROM procrastinate_jobs
WHERE id = ANY(%(ids)s) AND status = 'failed'
ORDER BY id
FOR UPDATE
"""

# Doing jobs whose worker is gone or silent (Procrastinate's select_stalled_jobs_by_heartbeat),
# locked the same way.
LOCK_STALLED = """
SELECT j.id, j.queueing_lock, j.abort_requested
FROM procrastinate_jobs j
LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
WHERE j.status = 'doing'
  AND (%(ids)s::bigint[] IS NULL OR j.id = ANY(%(ids)s))
  AND (j.worker_id IS NULL
       OR w.id IS NULL
       OR w.last_heartbeat < now() - make_interval(secs => %(stalled_after_s)s))
ORDER BY j.id
FOR UPDATE OF j
"""

# The todo job holding each of the queueing locks, if any. One query per batch, not one
# subquery per job: with stale statistics (right after a bulk retry made many todo jobs) the
# planner walks the todo jobs instead of the lock index, once here rather than once per job.
TODO_HOLDERS = """
SELECT DISTINCT ON (queueing_lock) queueing_lock, id
FROM procrastinate_jobs
WHERE status = 'todo' AND queueing_lock = ANY(%(locks)s::text[])
ORDER BY queueing_lock, id
"""

# Procrastinate's own retry, once per job: failed or doing → todo, attempts + 1, scheduled_at
# = retry_at (now() when not given, as Procrastinate's JobManager.retry_job does), optionally
# another priority and queue; a doing job whose abort was requested becomes failed instead.
# Its triggers write the `retried` / `deferred_for_retry` and `scheduled` events.
RETRY_WITH_PROCRASTINATE = """
SELECT procrastinate_retry_job_v2(
    id, coalesce(%(retry_at)s::timestamptz, now()), %(priority)s::integer, %(queue)s::varchar,
    NULL
)
FROM unnest(%(ids)s::bigint[]) AS id
"""

QUEUEING_LOCK_INDEX = "procrastinate_jobs_queueing_lock_idx_v1"

# What summaries and the audit count skipped jobs by: each lock reason names its own lock and
# job, and hundreds of locks must still make one line.
LOCK_REASON_KIND = "another job with its queueing lock is waiting"
LOCK_REASON_PREFIX = "another job with queueing lock "
ABORT_REASON = "abort was requested: marked failed instead"
REFUSED_REASON = "Procrastinate refused to retry it"

LOCK_SHOWN_CHARS = 80
PRIORITY_RANGE = (-(2**31), 2**31 - 1)  # procrastinate_jobs.priority is an integer


@dataclass(frozen=True)
class RetryOptions:
    """When and where a retried job runs; None keeps Procrastinate's defaults (now, same queue,
    same priority)."""

    at: datetime | None = None
    queue: str | None = None
    priority: int | None = None

    def params(self) -> dict[str, object]:
        return {"retry_at": self.at, "queue": self.queue, "priority": self.priority}

    def describe(self) -> dict[str, str | int]:
        """The options set, for the audit log (JSON-ready)."""
        described: dict[str, str | int] = {}
        if self.at is not None:
            described["at"] = self.at.astimezone(UTC).isoformat()
        if self.queue is not None:
            described["queue"] = self.queue
        if self.priority is not None:
            described["priority"] = self.priority
        return described


def is_aware_datetime(value: object) -> TypeGuard[datetime]:
    """A timezone-aware datetime. Takes any object: the CLI's and the pages' values reach the
    actions from outside the type checker, so the annotations alone do not make them so."""
    return isinstance(value, datetime) and value.utcoffset() is not None


def _queue_name(value: object) -> str | None:
    """The queue name `value` gives (stripped), None when it is not one (see is_aware_datetime)."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        return None
    return value.strip()


def retry_options(
    at: datetime | None = None, queue: str | None = None, priority: int | None = None
) -> RetryOptions:
    """Checked options; ActionError says what is wrong with the first bad one."""
    if at is not None and not is_aware_datetime(at):
        raise ActionError("retry time must be a timezone-aware datetime")
    if queue is not None:
        name = _queue_name(queue)
        if name is None:
            raise ActionError(f"not a queue name: {str(queue)[:40]!r}")
        queue = name
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ActionError(f"priority must be a whole number, got {str(priority)[:40]!r}")
        if not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
            raise ActionError(f"priority out of range: {priority}")
    return RetryOptions(at, queue, priority)


def queueing_lock_reason(lock: str, holder: int | None) -> str:
    shown = lock if len(lock) <= LOCK_SHOWN_CHARS else lock[: LOCK_SHOWN_CHARS - 1] + "…"
    reason = f"{LOCK_REASON_PREFIX}{shown!r} is waiting"
    return f"{reason} (job {holder})" if holder is not None else reason


def reason_kind(reason: str) -> str:
    """The reason without what is particular to one job (its lock, the job holding it)."""
    return LOCK_REASON_KIND if reason.startswith(LOCK_REASON_PREFIX) else reason


class LockedJob(NamedTuple):
    id: int
    queueing_lock: str | None
    abort_requested: bool


class _Holder(NamedTuple):
    queueing_lock: str
    id: int


def lock_failed_for_retry(conn: psycopg.Connection, ids: list[int]) -> list[LockedJob]:
    return fetch_all(conn, LockedJob, LOCK_FAILED_FOR_RETRY, {"ids": ids})


def lock_stalled(
    conn: psycopg.Connection, ids: list[int] | None, stalled_after_s: float
) -> list[LockedJob]:
    params = {"ids": ids, "stalled_after_s": float(stalled_after_s)}
    return fetch_all(conn, LockedJob, LOCK_STALLED, params)


def todo_holders(conn: psycopg.Connection, locks: Iterable[str]) -> dict[str, int]:
    """The todo job holding each queueing lock, for those held."""
    wanted = sorted(set(locks))
    if not wanted:
        return {}
    return dict(fetch_all(conn, _Holder, TODO_HOLDERS, {"locks": wanted}))


def retry_locked(
    conn: psycopg.Connection, jobs: Iterable[LockedJob], options: RetryOptions
) -> tuple[list[int], dict[int, str]]:
    """Retry the locked jobs (in id order); the ids retried and, for the others, why not."""
    jobs = list(jobs)
    skipped: dict[int, str] = {}
    # Who holds each lock: a todo job already waiting, then the first job retried here.
    retried_locks = (job.queueing_lock for job in jobs if not job.abort_requested)
    claimed = todo_holders(conn, [lock for lock in retried_locks if lock is not None])
    locks: dict[int, str | None] = {}
    to_call: list[int] = []
    for job in jobs:
        if job.abort_requested:
            # Procrastinate marks it failed: it takes no queueing lock.
            skipped[job.id] = ABORT_REASON
        elif job.queueing_lock is not None:
            holder = claimed.get(job.queueing_lock)
            if holder is not None:
                skipped[job.id] = queueing_lock_reason(job.queueing_lock, holder)
                continue
            claimed[job.queueing_lock] = job.id
        locks[job.id] = job.queueing_lock
        to_call.append(job.id)
    called = _call_retry(conn, to_call, options, locks, skipped)
    return [job_id for job_id in called if job_id not in skipped], skipped


def _call_retry(
    conn: psycopg.Connection,
    ids: list[int],
    options: RetryOptions,
    locks: Mapping[int, str | None],
    skipped: dict[int, str],
) -> list[int]:
    """Call Procrastinate's retry for `ids`: all in one statement; if Procrastinate refuses one
    (a job deferred meanwhile took its queueing lock), one savepoint per job, so that job is
    skipped with its reason and the others are still retried."""
    if not ids:
        return []
    params = options.params()
    try:
        with conn.transaction():
            conn.execute(RETRY_WITH_PROCRASTINATE, {**params, "ids": ids})
        return ids
    except (psycopg.errors.UniqueViolation, psycopg.errors.RaiseException):
        pass
    called: list[int] = []
    for job_id in ids:
        try:
            with conn.transaction():
                conn.execute(RETRY_WITH_PROCRASTINATE, {**params, "ids": [job_id]})
        except psycopg.errors.UniqueViolation as exc:
            lock = locks.get(job_id)
            if exc.diag.constraint_name != QUEUEING_LOCK_INDEX or lock is None:
                raise
            skipped[job_id] = queueing_lock_reason(lock, todo_holders(conn, [lock]).get(lock))
        except psycopg.errors.RaiseException:
            skipped[job_id] = REFUSED_REASON
        else:
            called.append(job_id)
    return called
