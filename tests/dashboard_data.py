"""Crafting dashboard data in a real database, the way Procrastinate and our worker write it.

Jobs are inserted as todo and walked through status UPDATEs so Procrastinate's triggers write
the events the loaders read.
"""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb


def add_job(
    conn: psycopg.Connection,
    *,
    queue: str = "default",
    task: str = "tasks.send",
    args: dict | None = None,
    final_status: str = "todo",
) -> int:
    """Insert a todo job and walk it to `final_status` so Procrastinate's triggers write events."""
    (job_id,) = conn.execute(
        "insert into procrastinate_jobs (queue_name, task_name, args, status) "
        "values (%s, %s, %s, 'todo') returning id",
        (queue, task, Jsonb(args or {})),
    ).fetchone()
    if final_status != "todo":
        conn.execute("update procrastinate_jobs set status = 'doing' where id = %s", (job_id,))
    if final_status not in ("todo", "doing"):
        conn.execute(
            "update procrastinate_jobs set status = %s, attempts = 1 where id = %s",
            (final_status, job_id),
        )
    return job_id


def add_error(conn: psycopg.Connection, job_id: int, exception_type: str, message: str) -> None:
    conn.execute(
        "insert into jobdash_job_errors (job_id, attempt, exception_type, message, traceback,"
        " will_retry) values (%s, 1, %s, %s, 'Traceback...', false)",
        (job_id, exception_type, message),
    )


def add_worker(conn: psycopg.Connection, hostname: str, pid: int) -> int:
    (worker_id,) = conn.execute(
        "insert into procrastinate_workers (last_heartbeat) values (now()) returning id"
    ).fetchone()
    conn.execute(
        "insert into jobdash_workers (worker_id, worker_name, hostname, pid, concurrency,"
        " cpu_percent, memory_mb, started_at) values (%s, 'w', %s, %s, 4, 12.5, 256, now())",
        (worker_id, hostname, pid),
    )
    return worker_id


def add_periodic(conn: psycopg.Connection, task: str, cron: str) -> None:
    conn.execute(
        "insert into jobdash_periodic_tasks (task_name, cron, queue_name, published_by)"
        " values (%s, %s, 'default', 'test')",
        (task, cron),
    )
