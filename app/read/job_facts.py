"""A job in full for the Jobs page: the detail every page shows (events, errors, args,
archive) plus its worker and, for a waiting job, the facts "why isn't it running?" needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from jobdash.app.read.failed_jobs import JobDetail, load_job_detail
from jobdash.app.read.job_filter import state_of
from jobdash.app.read.queues import load_live_workers
from jobdash.app.rules.why_waiting import WAITING_STATES, WaitFacts, explain

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


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def load_wait_facts(
    conn: psycopg.Connection, job: dict, state: str, now: datetime, live_s: float = 120
) -> WaitFacts:
    """The facts `explain` needs about one waiting job, in a few small indexed reads."""
    params = {
        "queue": job["queue_name"],
        "lock": job.get("lock"),
        "id": job["id"],
        "priority": job["priority"],
        "cap": AHEAD_CAP,
    }
    pause = conn.execute(PAUSE, params).fetchone()
    workers = load_live_workers(conn, live_s)
    listening = [w for w in workers if w.listens_to(job["queue_name"])]
    holder = first = None
    if job.get("lock") is not None:
        holder = conn.execute(LOCK_HOLDER, params).fetchone()
        if holder is None:
            first = conn.execute(LOCK_FIRST, params).fetchone()
    ahead_row = conn.execute(AHEAD, params).fetchone()
    ahead = int(ahead_row[0]) if ahead_row else 0
    slots = [w.concurrency for w in listening]
    return WaitFacts(
        state=state,
        queue=job["queue_name"],
        now=now,
        scheduled_at=_utc(job.get("scheduled_at")),
        queue_paused_at=_utc(pause[0]) if pause else None,
        queue_paused_by=pause[1] if pause else None,
        live_workers=len(workers),
        listening_workers=len(listening),
        unknown_workers=sum(1 for w in workers if not w.instrumented),
        honouring_workers=sum(1 for w in listening if w.honours_pauses),
        lock=job.get("lock"),
        lock_holder_id=int(holder[0]) if holder else None,
        lock_holder_started_at=_utc(holder[1]) if holder else None,
        lock_first_id=int(first[0]) if first else None,
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
    row = conn.execute(NOW).fetchone()
    now = _utc(row[0]) if row else datetime.now(UTC)
    assert now is not None
    if detail.deleted_at is not None:
        return JobView(detail, "deleted", None, None)
    state = state_of(job["status"], job.get("scheduled_at"), bool(job.get("abort_requested")), now)
    worker = None
    if job.get("worker_id") is not None:
        found = conn.execute(WORKER, {"worker": job["worker_id"]}).fetchone()
        if found:
            worker = f"{found[0]}:{found[1]}" + (f" ({found[2]})" if found[2] else "")
        else:
            worker = f"worker #{job['worker_id']} (not instrumented)"
    why = None
    if state in WAITING_STATES:
        why = explain(load_wait_facts(conn, job, state, now, live_s))
    return JobView(detail, state, worker, why)
