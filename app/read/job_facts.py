"""A job in full for the Jobs page: the detail every page shows (events, errors, args,
archive) plus its worker and, for a waiting job, the facts "why isn't it running?" needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import psycopg

from jobdash.app.read.job_detail import JobDetail, JobRow, load_job_detail
from jobdash.app.read.job_filter import state_of
from jobdash.app.read.queues import load_live_workers
from jobdash.app.rules.why_waiting import WAITING_STATES, WaitFacts, explain
from jobdash.core.rows import fetch_optional, utc

AHEAD_CAP = 10_000

NOW = "SELECT now()"
PAUSE = "SELECT paused_at, paused_by FROM jobdash_queue_pauses WHERE queue_name = %(queue)s"
WORKER = """
SELECT jw.hostname, jw.pid, jw.worker_name FROM jobdash_workers jw WHERE jw.worker_id = %(worker)s
"""
# The doing job holding the lock (Procrastinate's unique index of doing locks), when it started.
LOCK_HOLDER = """
SELECT j.id, (SELECT max(e.at) FROM procrastinate_events e
               WHERE e.job_id = j.id AND e.type = 'started')
FROM procrastinate_jobs j WHERE j.lock = %(lock)s AND j.status = 'doing'
"""
# A waiting job with the same lock that Procrastinate's fetch takes first.
LOCK_FIRST = """
SELECT j.id FROM procrastinate_jobs j
WHERE j.lock = %(lock)s AND j.status = 'todo' AND j.id <> %(id)s
  AND (j.priority > %(priority)s OR (j.priority = %(priority)s AND j.id < %(id)s))
ORDER BY j.priority DESC, j.id LIMIT 1
"""
# Ready jobs of the queue that a worker's fetch (priority desc, id asc) takes before it.
AHEAD = """
SELECT count(*) FROM (
    SELECT 1 FROM procrastinate_jobs j
    WHERE j.status = 'todo' AND j.queue_name = %(queue)s
      AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
      AND (j.priority > %(priority)s OR (j.priority = %(priority)s AND j.id < %(id)s))
    LIMIT %(cap)s + 1
) a
"""


@dataclass
class JobView:
    detail: JobDetail
    state: str
    worker: str | None  # "host:pid (name)" of the job's worker, "worker #id" if unknown
    why_waiting: str | None  # one line for a ready or scheduled job


class WaitingJob(NamedTuple):
    """The fields of a job (its row as JobDetail.job holds it) that the wait facts read."""

    id: int
    queue_name: str
    priority: int
    lock: str | None
    scheduled_at: datetime | None

    @classmethod
    def of(cls, job: JobRow) -> WaitingJob:
        return cls(job["id"], job["queue_name"], job["priority"], job["lock"], job["scheduled_at"])


class _Pause(NamedTuple):
    paused_at: datetime
    paused_by: str


class _Holder(NamedTuple):
    id: int
    started_at: datetime | None


class _Id(NamedTuple):
    id: int


class _Count(NamedTuple):
    n: int


class _Now(NamedTuple):
    now: datetime


class _Worker(NamedTuple):
    hostname: str | None
    pid: int | None
    worker_name: str | None


def load_wait_facts(
    conn: psycopg.Connection,
    job: JobRow,
    state: str,
    now: datetime,
    live_s: float = 120,
) -> WaitFacts:
    """The facts `explain` needs about one waiting job, in a few small indexed reads."""
    waiting = WaitingJob.of(job)
    params = {
        "queue": waiting.queue_name,
        "lock": waiting.lock,
        "id": waiting.id,
        "priority": waiting.priority,
        "cap": AHEAD_CAP,
    }
    pause = fetch_optional(conn, _Pause, PAUSE, params)
    workers = load_live_workers(conn, live_s)
    listening = [w for w in workers if w.listens_to(waiting.queue_name)]
    holder: _Holder | None = None
    first: _Id | None = None
    if waiting.lock is not None:
        holder = fetch_optional(conn, _Holder, LOCK_HOLDER, params)
        if holder is None:
            first = fetch_optional(conn, _Id, LOCK_FIRST, params)
    ahead_row = fetch_optional(conn, _Count, AHEAD, params)
    ahead = int(ahead_row.n) if ahead_row else 0
    slots = [w.concurrency for w in listening]
    return WaitFacts(
        state=state,
        queue=waiting.queue_name,
        now=now,
        scheduled_at=utc(waiting.scheduled_at),
        queue_paused_at=utc(pause.paused_at) if pause else None,
        queue_paused_by=pause.paused_by if pause else None,
        live_workers=len(workers),
        listening_workers=len(listening),
        unknown_workers=sum(1 for w in workers if not w.instrumented),
        honouring_workers=sum(1 for w in listening if w.honours_pauses),
        lock=waiting.lock,
        lock_holder_id=int(holder.id) if holder else None,
        lock_holder_started_at=utc(holder.started_at) if holder else None,
        lock_first_id=int(first.id) if first else None,
        ahead=min(ahead, AHEAD_CAP),
        ahead_capped=ahead > AHEAD_CAP,
        busy_jobs=sum(w.running for w in listening) if listening else None,
        total_slots=sum(s for s in slots if s is not None)
        if listening and all(s is not None for s in slots)
        else None,
    )


def load_job_view(conn: psycopg.Connection, job_id: int, live_s: float = 120) -> JobView | None:
    detail = load_job_detail(conn, job_id)
    if detail is None:
        return None
    job = detail.job
    row = fetch_optional(conn, _Now, NOW)
    now = utc(row.now) if row else datetime.now(UTC)
    assert now is not None
    if detail.deleted_at is not None:
        return JobView(detail, "deleted", None, None)
    state = state_of(job["status"], job["scheduled_at"], job["abort_requested"], now)
    worker = None
    worker_id = job["worker_id"]
    if worker_id is not None:
        found = fetch_optional(conn, _Worker, WORKER, {"worker": worker_id})
        if found:
            worker = f"{found.hostname}:{found.pid}" + (
                f" ({found.worker_name})" if found.worker_name else ""
            )
        else:
            worker = f"worker #{worker_id} (not instrumented)"
    why = None
    if state in WAITING_STATES:
        why = explain(load_wait_facts(conn, job, state, now, live_s))
    return JobView(detail, state, worker, why)
