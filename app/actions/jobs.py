"""Operator actions on jobs: retry, delete (archive first), restore, retry stalled — one job,
a list of ids, or every failed job matching a filter in batches.

Every action is conditional on the state the operator saw and lets the database settle races:
the rows are locked in id order (no deadlock between two operators), re-checked after the
lock (`status = 'failed'` in READ COMMITTED re-reads a row changed meanwhile), then changed;
so each job is acted on exactly once and the others are reported as skipped with a reason.
Retries go through Procrastinate's own function (app/actions/retry.py). The audit row is
written in the same transaction as the change. The UI, the CLI and the worker-health panel
all call these functions with the Identity acting: each checks read-only mode and the
actor's role first (`authorize`), and the audit log records the actor's name.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import LiteralString, NamedTuple, TypedDict, Unpack

import psycopg
from psycopg.types.json import Jsonb

from jobdash.app.actions.archive import (
    archive_and_delete_failed,
    job_id_column,
    live_archived,
    restore_archived,
)
from jobdash.app.actions.retry import (
    RetryOptions,
    lock_failed_for_retry,
    lock_stalled,
    reason_kind,
    retry_locked,
    retry_options,
)
from jobdash.app.read.failed_jobs import (
    FailedJobFilter,
    count_failed_jobs,
    failed_ids_batch,
    max_failed_id,
)
from jobdash.app.read.job_filter import JobFilter
from jobdash.core.auth.identity import Action, Identity, require
from jobdash.core.errors import ActionError
from jobdash.core.rows import fetch_all
from jobdash.core.settings import load_settings

DEFAULT_BATCH_SIZE = 1000
# Procrastinate's own default for "stalled" (seconds without a worker heartbeat).
STALLED_AFTER_S = 30

ProgressCallback = Callable[["ActionResult"], None]

# The failed jobs among the ids, locked in id order (no deadlock between two operators).
LOCK_FAILED = """
SELECT id FROM procrastinate_jobs
WHERE id = ANY(%(ids)s) AND status = 'failed'
ORDER BY id
FOR UPDATE
"""

CURRENT_STATUS = "SELECT id, status::text FROM procrastinate_jobs WHERE id = ANY(%(ids)s)"

INSERT_AUDIT = """
INSERT INTO jobdash_audit_log (actor, action, job_ids, filter, done, skipped, details)
VALUES (%(actor)s, %(action)s, %(job_ids)s, %(filter)s, %(done)s, %(skipped)s, %(details)s)
"""

# At most this many per-job skip reasons are kept in one audit row (the counts are exact).
AUDIT_SKIPPED_SAMPLE = 200

# How a summary says what was done.
DONE_WORDS = {
    Action.RETRY: "Retried",
    Action.DELETE: "Deleted",
    Action.RESTORE: "Restored",
    Action.RETRY_STALLED: "Retried stalled",
    Action.CANCEL: "Cancelled",
    Action.ABORT: "Requested abort of",
    Action.RUN_JOB_NOW: "Set to run now",
    Action.RESCHEDULE: "Rescheduled",
}


@dataclass(frozen=True)
class ActionResult:
    """What an action did: ids done, ids skipped with the reason, and whether it was stopped."""

    action: Action
    done: tuple[int, ...] = ()
    skipped: Mapping[int, str] = field(default_factory=dict)
    stopped: bool = False
    total: int | None = None  # "all matching": how many matched when the run started

    @property
    def done_count(self) -> int:
        return len(self.done)

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    @property
    def processed(self) -> int:
        return self.done_count + self.skipped_count

    def skipped_by_reason(self) -> dict[str, int]:
        """How many were skipped for each kind of reason (one count for all queueing locks)."""
        return count_reasons(self.skipped.values())

    def summary(self) -> str:
        """One line: "Retried 3 jobs; skipped 2 (no longer failed (now todo): 1, not found: 1)"."""
        return summarize(
            self.action, self.done_count, self.skipped_by_reason(), self.stopped, self.total
        )

    def merged(self, other: ActionResult) -> ActionResult:
        return ActionResult(
            self.action,
            self.done + other.done,
            {**self.skipped, **other.skipped},
            self.stopped or other.stopped,
            self.total,
        )


def count_reasons(reasons: Iterable[str]) -> dict[str, int]:
    return dict(Counter(reason_kind(reason) for reason in reasons).most_common())


def summarize(
    action: Action,
    done: int,
    skipped_by_reason: Mapping[str, int],
    stopped: bool = False,
    total: int | None = None,
) -> str:
    verb = DONE_WORDS.get(action, str(action))
    noun = "job" if done == 1 else "jobs"
    text = f"{verb} {done:,} {noun}"
    skipped = sum(skipped_by_reason.values())
    if skipped:
        reasons = ", ".join(f"{reason}: {count:,}" for reason, count in skipped_by_reason.items())
        text += f"; skipped {skipped:,} ({reasons})"
    if stopped:
        text = "Stopped midway. " + text
        if total is not None:
            text += f"; {max(0, total - done - skipped):,} of {total:,} matching not processed"
    return text


def parse_job_ids(values: Iterable[object]) -> list[int]:
    """Distinct positive job ids in first-seen order; ActionError names the first bad one."""
    ids: list[int] = []
    seen: set[int] = set()
    for value in values:
        text = str(value).strip()
        try:
            job_id = int(text)
        except ValueError:
            raise ActionError(f"not a job id: {text[:40]!r}") from None
        if job_id <= 0 or job_id >= 2**63:
            raise ActionError(f"not a job id: {text[:40]!r}")
        if job_id not in seen:
            seen.add(job_id)
            ids.append(job_id)
    return ids


def authorize(actor: Identity, action: Action) -> str:
    """The check every action makes first: read-only mode, then the actor's role (raises
    ReadOnlyError / PermissionDenied). The name the audit log records."""
    require(actor, action, read_only=load_settings().read_only)
    return actor.name


def _ensure_idle(conn: psycopg.Connection) -> None:
    # Each action commits its own transaction(s): inside a caller's transaction they would
    # become savepoints and commit only when the caller does.
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ActionError("the connection is inside a transaction; actions commit their own")


class _State(NamedTuple):
    id: int
    state: str


def explain_skipped(
    conn: psycopg.Connection,
    action: Action,
    ids: list[int],
    known: Mapping[int, str],
    current: LiteralString,
    why: Callable[[Action, str], str],
) -> dict[int, str]:
    """Why each of `ids` was not acted on: the reason the change gave (`known`), else what it
    is now (`why(action, state)`, with the states `current` reads: (id, state) by %(ids)s),
    else whether it was deleted or never existed."""
    if not ids:
        return {}
    states = dict(fetch_all(conn, _State, current, {"ids": ids}))
    archived = live_archived(conn, ids)
    reasons: dict[int, str] = {}
    for job_id in ids:
        if job_id in known:
            reasons[job_id] = known[job_id]
        elif job_id in states:
            reasons[job_id] = why(action, states[job_id])
        elif job_id in archived:
            reasons[job_id] = "already deleted"
        else:
            reasons[job_id] = "not found"
    return reasons


def _why_not_done(action: Action, status: str) -> str:
    """A job not retried, deleted or restored, by its status now."""
    if action == Action.RETRY_STALLED:
        if status == "doing":
            return "not stalled (its worker is alive)"
        return f"no longer doing (now {status})"
    return f"no longer failed (now {status})"


def _reasons_for_skipped(
    conn: psycopg.Connection, action: Action, ids: list[int], known: Mapping[int, str]
) -> dict[int, str]:
    return explain_skipped(conn, action, ids, known, CURRENT_STATUS, _why_not_done)


def _write_audit(
    conn: psycopg.Connection,
    actor: str,
    action: Action,
    job_ids: list[int],
    done: int,
    skipped: Mapping[int, str],
    job_filter: FailedJobFilter | JobFilter | None,
    extra: Mapping[str, object] | None = None,
) -> None:
    sample = dict(list(skipped.items())[:AUDIT_SKIPPED_SAMPLE])
    details = {
        "skipped_by_reason": count_reasons(skipped.values()),
        "skipped_ids": {str(k): v for k, v in sample.items()},
        **(extra or {}),
    }
    conn.execute(
        INSERT_AUDIT,
        {
            "actor": actor,
            "action": action,
            "job_ids": job_ids,
            "filter": Jsonb(job_filter.describe()) if job_filter is not None else None,
            "done": done,
            "skipped": len(skipped),
            "details": Jsonb(details),
        },
    )


def _delete_in_transaction(
    conn: psycopg.Connection, ids: list[int], actor: str
) -> tuple[list[int], dict[int, str]]:
    locked = fetch_all(conn, job_id_column, LOCK_FAILED, {"ids": ids})
    return archive_and_delete_failed(conn, locked, actor), {}


def _act(
    conn: psycopg.Connection,
    action: Action,
    ids: list[int],
    actor: str,
    job_filter: FailedJobFilter | None = None,
    audit_extra: Mapping[str, object] | None = None,
    options: RetryOptions | None = None,
) -> ActionResult:
    """One transaction: lock, change, explain the skipped, audit."""
    with conn.transaction():
        if action == Action.RETRY:
            options = options or RetryOptions()
            done, known = retry_locked(conn, lock_failed_for_retry(conn, ids), options)
            audit_extra = {**(audit_extra or {}), **_described(options)}
        elif action == Action.DELETE:
            done, known = _delete_in_transaction(conn, ids, actor)
        elif action == Action.RESTORE:
            outcome = restore_archived(conn, ids, actor)
            done, known = outcome.restored, outcome.skipped
        else:
            raise ValueError(f"unknown action {action!r}")
        done_set = set(done)
        skipped = _reasons_for_skipped(conn, action, [i for i in ids if i not in done_set], known)
        _write_audit(conn, actor, action, ids, len(done), skipped, job_filter, audit_extra)
    return ActionResult(action, tuple(done), skipped)


def _described(options: RetryOptions) -> dict[str, object]:
    described = options.describe()
    return {"options": described} if described else {}


def _act_on_ids(
    conn: psycopg.Connection,
    action: Action,
    ids: Iterable[object],
    actor: Identity,
    options: RetryOptions | None = None,
) -> ActionResult:
    name = authorize(actor, action)
    job_ids = parse_job_ids(ids)
    if not job_ids:
        return ActionResult(action)
    _ensure_idle(conn)
    return _act(conn, action, job_ids, name, options=options)


def retry_jobs(
    conn: psycopg.Connection,
    ids: Iterable[object],
    actor: Identity,
    *,
    at: datetime | None = None,
    queue: str | None = None,
    priority: int | None = None,
) -> ActionResult:
    """Retry the failed jobs among `ids` with Procrastinate's own retry (failed → todo).

    They run now, or not before `at` (timezone-aware); `queue` moves them to another queue,
    `priority` gives them another priority. Of jobs sharing a queueing lock only the first
    (lowest id) is retried; the others are skipped, naming the job that holds the lock.
    """
    options = retry_options(at, queue, priority)
    return _act_on_ids(conn, Action.RETRY, ids, actor, options)


def delete_jobs(conn: psycopg.Connection, ids: Iterable[object], actor: Identity) -> ActionResult:
    """Archive, then delete, the failed jobs among `ids`."""
    return _act_on_ids(conn, Action.DELETE, ids, actor)


def restore_jobs(conn: psycopg.Connection, ids: Iterable[object], actor: Identity) -> ActionResult:
    """Put deleted jobs back from the archive, with their events and errors, ids preserved."""
    return _act_on_ids(conn, Action.RESTORE, ids, actor)


class Batching(TypedDict, total=False):
    """How an "all matching" run goes (every such action takes these): `batch_size` jobs per
    transaction; `should_stop()` is asked before each batch, and what was done stays done and
    is reported (`stopped=True`); `progress(result_so_far)` is called after each batch."""

    batch_size: int
    should_stop: Callable[[], bool] | None
    progress: ProgressCallback | None


# From where the next batch starts: its ids (maybe none) and where the one after starts
# (None: there is none).
NextBatch = Callable[[int], tuple[list[int], int | None]]
# One batch in its own transaction, with what its audit row adds.
ActOnBatch = Callable[[list[int], Mapping[str, object]], ActionResult]


def begin_batches(
    conn: psycopg.Connection, actor: Identity, action: Action, batching: Batching
) -> str:
    """The checks before an all-matching run: read-only mode and role (authorize), a
    connection outside a transaction, the batch size. The name the audit log records."""
    name = authorize(actor, action)
    _ensure_idle(conn)
    if batch_size(batching) < 1:
        raise ActionError("batch size must be at least 1")
    return name


def batch_size(batching: Batching) -> int:
    return batching.get("batch_size", DEFAULT_BATCH_SIZE)


def run_in_batches(
    action: Action,
    total: int,
    start: int,
    next_batch: NextBatch,
    act: ActOnBatch,
    batching: Batching,
) -> ActionResult:
    """Batches from `start` until there are none, each acted on and audited as one batch of
    this run (`action`: what the result is called, `total`: how many matched at the start)."""
    should_stop = batching.get("should_stop")
    progress = batching.get("progress")
    run_id = uuid.uuid4().hex[:12]
    result = ActionResult(action, total=total)
    batch = 0
    position: int | None = start
    while position is not None:
        if should_stop is not None and should_stop():
            return ActionResult(action, result.done, result.skipped, True, total)
        ids, position = next_batch(position)
        if not ids:
            continue
        batch += 1
        extra = {"run": run_id, "batch": batch, "all_matching": True}
        result = result.merged(act(ids, extra))
        if progress is not None:
            progress(result)
    return result


def _all_matching(
    conn: psycopg.Connection,
    action: Action,
    job_filter: FailedJobFilter,
    actor: Identity,
    batching: Batching,
    options: RetryOptions | None = None,
) -> ActionResult:
    name = begin_batches(conn, actor, action, batching)
    max_id = max_failed_id(conn)
    total = count_failed_jobs(conn, job_filter)
    size = batch_size(batching)

    def next_batch(after_id: int) -> tuple[list[int], int | None]:
        ids = failed_ids_batch(conn, job_filter, after_id, max_id, size)
        return ids, ids[-1] if ids else None

    def act(ids: list[int], extra: Mapping[str, object]) -> ActionResult:
        return _act(conn, action, ids, name, job_filter, extra, options)

    return run_in_batches(action, total, 0, next_batch, act, batching)


def retry_all_matching(
    conn: psycopg.Connection,
    job_filter: FailedJobFilter,
    actor: Identity,
    *,
    at: datetime | None = None,
    queue: str | None = None,
    priority: int | None = None,
    **batching: Unpack[Batching],
) -> ActionResult:
    """Retry every failed job matching the filter, in batches (see Batching). `at`, `queue`
    (where the jobs go, not a filter: that is `job_filter.queue`) and `priority` as for
    retry_jobs; so are the queueing locks, across batches too."""
    options = retry_options(at, queue, priority)
    return _all_matching(conn, Action.RETRY, job_filter, actor, batching, options)


def delete_all_matching(
    conn: psycopg.Connection,
    job_filter: FailedJobFilter,
    actor: Identity,
    **batching: Unpack[Batching],
) -> ActionResult:
    """Archive and delete every failed job matching the filter, in batches (see Batching)."""
    return _all_matching(conn, Action.DELETE, job_filter, actor, batching)


def retry_stalled_jobs(
    conn: psycopg.Connection,
    actor: Identity,
    ids: Iterable[object] | None = None,
    stalled_after_s: float = STALLED_AFTER_S,
) -> ActionResult:
    """Retry doing jobs whose worker is gone or has not sent a heartbeat for `stalled_after_s`,
    with Procrastinate's own retry, as its stalled-jobs recipe does.

    `ids=None`: every stalled job. A stalled job whose abort was requested is marked failed
    instead, as Procrastinate does, and reported as skipped.
    """
    name = authorize(actor, Action.RETRY_STALLED)
    _ensure_idle(conn)
    job_ids = parse_job_ids(ids) if ids is not None else None
    if job_ids == []:
        return ActionResult(Action.RETRY_STALLED)
    with conn.transaction():
        locked = lock_stalled(conn, job_ids, stalled_after_s)
        done, known = retry_locked(conn, locked, RetryOptions())
        considered = job_ids if job_ids is not None else [job.id for job in locked]
        done_set = set(done)
        skipped = _reasons_for_skipped(
            conn, Action.RETRY_STALLED, [i for i in considered if i not in done_set], known
        )
        _write_audit(conn, name, Action.RETRY_STALLED, considered, len(done), skipped, None)
    return ActionResult(Action.RETRY_STALLED, tuple(done), skipped)
