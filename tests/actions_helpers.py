"""Failed jobs made the way Procrastinate makes them (todo → doing → failed, events by its
triggers), with error rows as the instrumented worker records them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import psycopg
from psycopg.types.json import Jsonb

from jobdash.core.auth.identity import Identity, Role

MAKE_FAILED = """
WITH new_jobs AS (
    INSERT INTO procrastinate_jobs (queue_name, task_name, args, priority, queueing_lock)
    SELECT %(queue)s, %(task)s,
           jsonb_build_object('n', g, 'note', %(note)s::text) || %(extra)s::jsonb, g %% 3,
           %(qlock)s
    FROM generate_series(1, %(n)s) g
    RETURNING id
)
SELECT id FROM new_jobs ORDER BY id
"""


def make_failed_jobs(
    conn: psycopg.Connection,
    n: int,
    queue: str = "default",
    task: str = "app.tasks.work",
    exception_type: str | None = "ValueError",
    message: str = "boom",
    note: str = "",
    queueing_lock: str | None = None,
    queueing_locks: Sequence[str | None] | None = None,
    extra_args: Mapping[str, object] | None = None,
) -> list[int]:
    """`n` failed jobs; `queueing_locks` gives each its own (then `n` is its length): they are
    set while the jobs are doing, so failed jobs may share one as they do in real queues;
    `extra_args` are added to each job's args ({"n": i, "note": note})."""
    if queueing_locks is not None:
        n = len(queueing_locks)
    with conn.transaction():
        ids = [
            row[0]
            for row in conn.execute(
                MAKE_FAILED,
                {
                    "queue": queue,
                    "task": task,
                    "n": n,
                    "note": note,
                    "qlock": queueing_lock,
                    "extra": Jsonb(dict(extra_args or {})),
                },
            ).fetchall()
        ]
        conn.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = ANY(%s)", (ids,))
        if queueing_locks is not None:
            conn.execute(
                "UPDATE procrastinate_jobs j SET queueing_lock = l.lock "
                "FROM unnest(%s::bigint[], %s::text[]) AS l(id, lock) WHERE j.id = l.id",
                (ids, list(queueing_locks)),
            )
    # A separate transaction: the failed event is later than the started one.
    with conn.transaction():
        conn.execute(
            "UPDATE procrastinate_jobs SET status = 'failed', attempts = 1 WHERE id = ANY(%s)",
            (ids,),
        )
        if exception_type is not None:
            conn.execute(
                """
                INSERT INTO jobdash_job_errors
                    (job_id, attempt, exception_type, message, traceback, worker_id, hostname,
                     pid, will_retry)
                SELECT id, 1, %s, %s, 'Traceback (most recent call last):\n  ' || %s, 7,
                       'host-a', 4242, false
                FROM unnest(%s::bigint[]) AS id
                """,
                (exception_type, message, message, ids),
            )
    return ids


def job_status(conn: psycopg.Connection, job_id: int) -> str | None:
    row = conn.execute(
        "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job_id,)
    ).fetchone()
    return row[0] if row else None


def snapshot_job(conn: psycopg.Connection, job_id: int) -> tuple:
    """Everything stored about a job: its row, events and errors (for round-trip checks)."""
    job = conn.execute(
        "SELECT to_jsonb(j) FROM procrastinate_jobs j WHERE id = %s", (job_id,)
    ).fetchone()
    events = conn.execute(
        "SELECT to_jsonb(e) FROM procrastinate_events e WHERE job_id = %s ORDER BY id", (job_id,)
    ).fetchall()
    errors = conn.execute(
        "SELECT to_jsonb(r) FROM jobdash_job_errors r WHERE job_id = %s ORDER BY id", (job_id,)
    ).fetchall()
    return (job, events, errors)


def as_operator(name: str = "tester") -> Identity:
    """Someone allowed to act on jobs (the actions check the actor's role)."""
    return Identity(name, Role.OPERATOR, "cli")
