"""Crafting Procrastinate data for loader tests: real functions and triggers, explicit times."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb


def defer(
    conn: psycopg.Connection,
    *,
    queue: str = "default",
    task: str = "tasks.work",
    args: dict | None = None,
    scheduled_at: datetime | None = None,
) -> int:
    """Insert a job the way Procrastinate does (its triggers write the `deferred` event)."""
    row = conn.execute(
        "select unnest(procrastinate_defer_jobs_v1(array[row(%s, %s, 0, null, null, %s, %s)"
        "::procrastinate_job_to_defer_v1]))",
        (queue, task, Jsonb(args or {}), scheduled_at),
    ).fetchone()
    assert row is not None
    return int(row[0])


def set_status(
    conn: psycopg.Connection, job_id: int, status: str, worker_id: int | None = None
) -> None:
    """A status change through UPDATE, so Procrastinate's trigger writes the event."""
    conn.execute(
        "update procrastinate_jobs set status = %s, worker_id = %s, "
        "attempts = attempts + case when %s in ('succeeded', 'failed') then 1 else 0 end "
        "where id = %s",
        (status, worker_id, status, job_id),
    )


def set_event_age(conn: psycopg.Connection, job_id: int, event: str, seconds_ago: float) -> None:
    conn.execute(
        "update procrastinate_events set at = now() - make_interval(secs => %s) "
        "where job_id = %s and type = %s",
        (seconds_ago, job_id, event),
    )


def finish_in_past(
    conn: psycopg.Connection,
    job_id: int,
    outcome: str,
    *,
    started_ago_s: float,
    finished_ago_s: float,
) -> None:
    """A run that happened earlier: status set without triggers, then its events inserted
    with their historical times (Procrastinate's events are never updated in real life, so the
    finish event is written once, as the trigger-fed jobdash_job_finishes expects)."""
    conn.execute("set session_replication_role = replica")
    try:
        conn.execute(
            "update procrastinate_jobs set status = %s, attempts = attempts + 1 where id = %s",
            (outcome, job_id),
        )
    finally:
        conn.execute("set session_replication_role = origin")
    conn.execute(
        "insert into procrastinate_events (job_id, type, at) values "
        "(%s, 'started', now() - make_interval(secs => %s)), "
        "(%s, %s, now() - make_interval(secs => %s))",
        (job_id, started_ago_s, job_id, outcome, finished_ago_s),
    )
    # The failed ledger and list missed that change (their trigger was off too); the list
    # takes the failure time from the event just written.
    conn.execute("select jobdash_recount_failed()")


def add_worker(
    conn: psycopg.Connection,
    *,
    heartbeat_ago_s: float,
    host: tuple[str, int, float | None, float | None, int] | None = None,
) -> int:
    """A procrastinate_workers row; `host` = (hostname, pid, cpu, memory_mb, concurrency)
    adds the instrumentation row in jobdash_workers."""
    row = conn.execute(
        "insert into procrastinate_workers (last_heartbeat) "
        "values (now() - make_interval(secs => %s)) returning id",
        (heartbeat_ago_s,),
    ).fetchone()
    assert row is not None
    worker_id = int(row[0])
    if host:
        hostname, pid, cpu, memory, concurrency = host
        conn.execute(
            "insert into jobdash_workers (worker_id, worker_name, hostname, pid, queues, "
            "concurrency, cpu_percent, memory_mb, started_at) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, now())",
            (worker_id, f"w-{hostname}", hostname, pid, ["default"], concurrency, cpu, memory),
        )
    return worker_id


def record_error(
    conn: psycopg.Connection, job_id: int, attempt: int, exc_type: str, message: str
) -> None:
    conn.execute(
        "insert into jobdash_job_errors (job_id, attempt, exception_type, message, traceback, "
        "will_retry) values (%s, %s, %s, %s, 'tb', false)",
        (job_id, attempt, exc_type, message),
    )


def db_now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("select now()").fetchone()
    assert row is not None
    return row[0]
