"""Actions on jobs in any state, for the Jobs page and the CLI: cancel a waiting job, abort a
running one, run a scheduled job now, reschedule, delete finished jobs (archived, restorable)
— one job, a list of ids, or every job matching a filter in batches.

The same rules as app/actions/jobs.py: each batch is one transaction that locks the rows in id
order under the condition the operator saw (waiting, running, scheduled, finished), acts through
Procrastinate's own SQL functions where it has one, explains every skipped job, and writes the
audit row; so each job is acted on exactly once, whatever runs at the same time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Unpack

import psycopg

from jobdash.app.actions.archive import TERMINAL_STATUSES, archive_and_delete, job_id_column
from jobdash.app.actions.jobs import (
    ActionResult,
    Batching,
    _ensure_idle,
    _write_audit,
    authorize,
    batch_size,
    begin_batches,
    explain_skipped,
    parse_job_ids,
    run_in_batches,
)
from jobdash.app.actions.retry import (
    RetryOptions,
    is_aware_datetime,
    lock_failed_for_retry,
    retry_locked,
)
from jobdash.app.read.job_filter import JobFilter
from jobdash.app.read.jobs import STATE_CASE, count_jobs, matching_ids_batch, max_job_id
from jobdash.core.auth.identity import Action, Identity
from jobdash.core.errors import ActionError
from jobdash.core.rows import fetch_all

DEFAULT_SCAN = 100_000

# The rows each action may act on, locked in id order (no deadlock between two operators);
# READ COMMITTED re-checks the condition on a row changed meanwhile.
LOCK = """
SELECT j.id FROM procrastinate_jobs j
WHERE j.id = ANY(%(ids)s::bigint[]) AND {condition}
ORDER BY j.id
FOR UPDATE
"""
CONDITIONS = {
    Action.CANCEL: "j.status = 'todo'",
    Action.ABORT: "j.status = 'doing' AND NOT j.abort_requested",
    Action.RUN_JOB_NOW: "j.status = 'todo' AND j.scheduled_at > now()",
    Action.RESCHEDULE: "j.status = 'todo'",
    Action.DELETE: "j.status::text = ANY(%(terminal)s::text[])",
    Action.RETRY: "j.status = 'failed'",
}
# What the operator saw the job as, for skip reasons ("not waiting (now doing)").
EXPECTED = {
    Action.CANCEL: "waiting",
    Action.ABORT: "running",
    Action.RUN_JOB_NOW: "scheduled",
    Action.RESCHEDULE: "waiting",
    Action.DELETE: "finished",
    Action.RETRY: "failed",
}

# Procrastinate's own cancel: todo → cancelled (or deleted when `delete_job`), or for a doing job
# with `abort` the abort request its worker acts on.
CANCEL_WITH_PROCRASTINATE = """
SELECT procrastinate_cancel_job_v1(id, %(abort)s, %(delete)s)
FROM unnest(%(ids)s::bigint[]) AS id
"""
# Procrastinate 3.10 has no function that changes a waiting job's scheduled_at
# (procrastinate_retry_job_v2 takes only failed and doing jobs; defer makes new jobs), so run
# now / reschedule is this UPDATE of ours, on rows locked under the same condition. Its trigger
# procrastinate_trigger_scheduled_events_v1 records the new time as a `scheduled` event.
SET_SCHEDULED_AT = """
UPDATE procrastinate_jobs SET scheduled_at = coalesce(%(at)s::timestamptz, now())
WHERE id = ANY(%(ids)s::bigint[])
RETURNING id
"""
CURRENT_STATE = (
    "SELECT j.id, " + STATE_CASE + " FROM procrastinate_jobs j WHERE j.id = ANY(%(ids)s)"
)


@dataclass(frozen=True)
class _Options:
    """What an action takes besides the ids: `delete` (cancel), `at` (reschedule), `retry`."""

    delete: bool = False
    at: datetime | None = None
    retry: RetryOptions | None = None


def _cancelled(job_id: int | None) -> int | None:
    """The row of Procrastinate's cancel: the job's id, None when it was not cancelled."""
    return job_id


def _why_not_done(action: Action, state: str) -> str:
    """A job not acted on, by its state now (app/read/jobs.py's STATE_CASE)."""
    if action == Action.ABORT and state == "abort_requested":
        return "abort already requested"
    return f"not {EXPECTED[action]} (now {state.replace('_', ' ')})"


def _change(
    conn: psycopg.Connection,
    action: Action,
    locked: list[int],
    options: _Options,
    actor: str,
) -> tuple[list[int], dict[int, str]]:
    """Act on the locked rows: the ids done, and reasons for those refused on the way."""
    if not locked:
        return [], {}
    if action in (Action.CANCEL, Action.ABORT):
        params = {"ids": locked, "abort": action == Action.ABORT, "delete": options.delete}
        cancelled = fetch_all(conn, _cancelled, CANCEL_WITH_PROCRASTINATE, params)
        return sorted(job_id for job_id in cancelled if job_id), {}
    if action in (Action.RUN_JOB_NOW, Action.RESCHEDULE):
        at = options.at if action == Action.RESCHEDULE else None
        moved = fetch_all(conn, job_id_column, SET_SCHEDULED_AT, {"ids": locked, "at": at})
        return sorted(moved), {}
    if action == Action.DELETE:
        return archive_and_delete(conn, locked, actor), {}
    if action == Action.RETRY:
        retry = options.retry or RetryOptions()
        return retry_locked(conn, lock_failed_for_retry(conn, locked), retry)
    raise ValueError(f"unknown action {action!r}")


def _audited_as(action: Action, options: _Options) -> Action:
    """What the role check and the audit log call it: cancelling with `delete` deletes."""
    return Action.DELETE if action == Action.CANCEL and options.delete else action


def _act(
    conn: psycopg.Connection,
    action: Action,
    ids: list[int],
    actor: str,
    options: _Options,
    job_filter: JobFilter | None = None,
    audit_extra: Mapping[str, object] | None = None,
) -> ActionResult:
    """One transaction: lock, change, explain the skipped, audit (`actor`: the name)."""
    name = _audited_as(action, options)
    with conn.transaction():
        query = LOCK.format(condition=CONDITIONS[action])
        params = {"ids": ids, "terminal": list(TERMINAL_STATUSES)}
        locked = fetch_all(conn, job_id_column, query, params)
        done, known = _change(conn, action, locked, options, actor)
        done_set = set(done)
        not_done = [i for i in ids if i not in done_set]
        skipped = explain_skipped(conn, action, not_done, known, CURRENT_STATE, _why_not_done)
        extra = dict(audit_extra or {})
        if name != action:
            extra["as"] = "cancel, deleting (Procrastinate's cancel with delete_job)"
        if action == Action.RESCHEDULE and options.at is not None:
            extra["at"] = options.at.isoformat()
        if action == Action.RETRY and options.retry is not None:
            described = options.retry.describe()
            if described:
                extra["options"] = described
        _write_audit(conn, actor, name, ids, len(done), skipped, job_filter, extra)
    return ActionResult(name, tuple(done), skipped)


def _on_ids(
    conn: psycopg.Connection,
    action: Action,
    ids: Iterable[object],
    actor: Identity,
    options: _Options = _Options(),
) -> ActionResult:
    name = authorize(actor, _audited_as(action, options))
    job_ids = parse_job_ids(ids)
    if not job_ids:
        return ActionResult(_audited_as(action, options))
    _ensure_idle(conn)
    return _act(conn, action, job_ids, name, options)


def _checked_time(at: object) -> datetime:
    """`at` as given, when it is a timezone-aware datetime (see is_aware_datetime)."""
    if is_aware_datetime(at):
        return at
    raise ActionError("the time must be a timezone-aware datetime")


def cancel_jobs(
    conn: psycopg.Connection, ids: Iterable[object], actor: Identity, *, delete: bool = False
) -> ActionResult:
    """Cancel the waiting (todo) jobs among `ids` with Procrastinate's cancel; `delete` deletes
    them instead, as Procrastinate's cancel allows (not archived)."""
    return _on_ids(conn, Action.CANCEL, ids, actor, _Options(delete=delete))


def abort_jobs(conn: psycopg.Connection, ids: Iterable[object], actor: Identity) -> ActionResult:
    """Request the abort of the running (doing) jobs among `ids`, as Procrastinate does: its
    worker cancels an async task; a sync task stops only if it checks should_abort()."""
    return _on_ids(conn, Action.ABORT, ids, actor)


def run_now(conn: psycopg.Connection, ids: Iterable[object], actor: Identity) -> ActionResult:
    """Make the scheduled jobs among `ids` ready now."""
    return _on_ids(conn, Action.RUN_JOB_NOW, ids, actor)


def reschedule_jobs(
    conn: psycopg.Connection, ids: Iterable[object], actor: Identity, *, at: datetime
) -> ActionResult:
    """Make the waiting jobs among `ids` run not before `at` (timezone-aware)."""
    return _on_ids(conn, Action.RESCHEDULE, ids, actor, _Options(at=_checked_time(at)))


def delete_finished_jobs(
    conn: psycopg.Connection, ids: Iterable[object], actor: Identity
) -> ActionResult:
    """Archive, then delete, the finished (succeeded, failed, cancelled, aborted) jobs among
    `ids`; restorable with restore_jobs."""
    return _on_ids(conn, Action.DELETE, ids, actor)


class Scanned(Batching, total=False):
    """Batching, and how many of the oldest open jobs a batch's query walks (app/read/jobs.py)."""

    scan: int


def all_matching(
    conn: psycopg.Connection,
    action: Action,
    job_filter: JobFilter,
    actor: Identity,
    *,
    scan: int = DEFAULT_SCAN,
    delete: bool = False,
    at: datetime | None = None,
    retry: RetryOptions | None = None,
    **batching: Unpack[Batching],
) -> ActionResult:
    """`action` on every job matching the filter when the run starts (ids up to the newest
    then), in batches (see Batching), newest first; each batch's query is bounded (see
    app/read/jobs.py), so a run over a big table takes long but never times out.
    `delete` (cancel), `at` (reschedule), `retry` as for the actions on ids."""
    if action not in CONDITIONS:
        raise ActionError(f"unknown action {action!r}")
    options = _Options(delete, at, retry)
    audited = _audited_as(action, options)
    name = begin_batches(conn, actor, audited, batching)
    if action == Action.RESCHEDULE:
        options = _Options(delete, _checked_time(at), retry)
    newest = max_job_id(conn)
    count = count_jobs(conn, job_filter, scan)
    total = count.matched if count.exact else max(count.matched, count.estimate or 0)
    size = batch_size(batching)

    def next_batch(before: int) -> tuple[list[int], int | None]:
        return matching_ids_batch(conn, job_filter, before, size, scan)

    def act(ids: list[int], extra: Mapping[str, object]) -> ActionResult:
        return _act(conn, action, ids, name, options, job_filter, extra)

    return run_in_batches(audited, total, newest + 1, next_batch, act, batching)


def cancel_all_matching(
    conn: psycopg.Connection,
    job_filter: JobFilter,
    actor: Identity,
    *,
    delete: bool = False,
    **kwargs: Unpack[Scanned],
) -> ActionResult:
    return all_matching(conn, Action.CANCEL, job_filter, actor, delete=delete, **kwargs)


def retry_all_matching_jobs(
    conn: psycopg.Connection,
    job_filter: JobFilter,
    actor: Identity,
    *,
    retry: RetryOptions | None = None,
    **kwargs: Unpack[Scanned],
) -> ActionResult:
    """Retry every failed job matching an explorer filter (options as retry_jobs)."""
    return all_matching(conn, Action.RETRY, job_filter, actor, retry=retry, **kwargs)


def delete_finished_all_matching(
    conn: psycopg.Connection, job_filter: JobFilter, actor: Identity, **kwargs: Unpack[Scanned]
) -> ActionResult:
    return all_matching(conn, Action.DELETE, job_filter, actor, **kwargs)
