"""Jobs driven through Procrastinate's triggers with plain SQL, for the history tests."""

from __future__ import annotations

from datetime import datetime

import psycopg

from jobdash.core.history_tables import (
    ATTEMPT_END_EVENTS,
    EVENT_COLUMNS,
    HISTOGRAM_BOUNDS_MS,
    HISTOGRAM_COLUMNS,
)
from jobdash.jobs.maintenance.rollup import run_rollup

# Outcome -> the status updates that produce its events (after todo -> doing).
FINAL_STATUS = {"succeeded": "succeeded", "failed": "failed", "aborted": "aborted"}


def defer_job(conn: psycopg.Connection, queue: str = "default", task: str = "t.work") -> int:
    row = conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) "
        "VALUES (%s, %s, '{}', 'todo') RETURNING id",
        (queue, task),
    ).fetchone()
    assert row
    return row[0]


def set_status(conn: psycopg.Connection, job_id: int, status: str) -> None:
    conn.execute("UPDATE procrastinate_jobs SET status = %s WHERE id = %s", (status, job_id))


def set_event_time(conn: psycopg.Connection, job_id: int, event_type: str, at: datetime) -> None:
    """Move the latest event of that type (so repeated attempts can be placed one by one)."""
    conn.execute(
        "UPDATE procrastinate_events SET at = %s WHERE id = ("
        " SELECT max(id) FROM procrastinate_events WHERE job_id = %s AND type = %s)",
        (at, job_id, event_type),
    )


def run_job(
    conn: psycopg.Connection,
    *,
    queue: str = "default",
    task: str = "t.work",
    outcome: str = "succeeded",
    started_at: datetime,
    finished_at: datetime,
    retries: int = 0,
) -> int:
    """A job that ran (with `retries` earlier failed attempts), events at the given times."""
    job_id = defer_job(conn, queue, task)
    set_event_time(conn, job_id, "deferred", started_at)
    for _ in range(retries):
        set_status(conn, job_id, "doing")
        set_event_time(conn, job_id, "started", started_at)
        set_status(conn, job_id, "todo")
        set_event_time(conn, job_id, "deferred_for_retry", started_at)
    set_status(conn, job_id, "doing")
    set_event_time(conn, job_id, "started", started_at)
    if outcome == "cancelled":
        raise ValueError("a cancelled job never ran")
    set_status(conn, job_id, FINAL_STATUS[outcome])
    set_event_time(conn, job_id, outcome, finished_at)
    return job_id


def rollup(database_url: str, *, backfill: bool = False):
    with psycopg.connect(database_url, autocommit=True) as conn:
        return run_rollup(conn, backfill=backfill)


def minute_totals(conn: psycopg.Connection) -> dict[tuple, tuple]:
    rows = conn.execute(
        "SELECT bucket, queue_name, task_name, started, succeeded, failed, retried, cancelled,"
        " aborted, duration_count FROM jobdash_history_minute"
    ).fetchall()
    return {r[:3]: tuple(r[3:]) for r in rows}


def raw_event_totals(conn: psycopg.Connection, since: datetime) -> dict[tuple, tuple]:
    """The same totals computed directly from the raw events (the reference)."""
    rows = conn.execute(
        """
        SELECT date_trunc('minute', e.at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
               j.queue_name, j.task_name,
               count(*) FILTER (WHERE e.type = 'started'),
               count(*) FILTER (WHERE e.type = 'succeeded'),
               count(*) FILTER (WHERE e.type = 'failed'),
               count(*) FILTER (WHERE e.type = 'deferred_for_retry'),
               count(*) FILTER (WHERE e.type = 'cancelled'),
               count(*) FILTER (WHERE e.type = 'aborted'),
               count(*) FILTER (WHERE e.type IN
                   ('succeeded', 'failed', 'deferred_for_retry', 'aborted'))
          FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id
         WHERE e.at >= %s AND e.type IN ('started', 'succeeded', 'failed',
               'deferred_for_retry', 'cancelled', 'aborted')
         GROUP BY 1, 2, 3
        """,
        (since,),
    ).fetchall()
    return {r[:3]: tuple(r[3:]) for r in rows}


def db_now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row
    return row[0]


def _reference_event_buckets_sql() -> str:
    """The first version of EVENT_BUCKETS_SQL, the reference its rewrite must equal: a
    correlated "latest started" subquery per event (inlined once per aggregate reading it)."""
    bounds = "ARRAY[" + ", ".join(repr(b) for b in HISTOGRAM_BOUNDS_MS) + "]::float8[]"
    counts = ",\n           ".join(
        f"count(*) FILTER (WHERE type = '{event}') AS {column}"
        for event, column in EVENT_COLUMNS.items()
    )
    bins = ",\n           ".join(
        f"count(*) FILTER (WHERE bin = {i}) AS {c}" for i, c in enumerate(HISTOGRAM_COLUMNS)
    )
    types = ", ".join(f"'{t}'" for t in EVENT_COLUMNS)
    ends = ", ".join(f"'{t}'" for t in ATTEMPT_END_EVENTS)
    return f"""
WITH ev AS (
    SELECT e.id, e.job_id, e.type::text AS type, e.at, j.queue_name, j.task_name
      FROM procrastinate_events e
      JOIN procrastinate_jobs j ON j.id = e.job_id
     WHERE e.id > %(floor_id)s AND e.at >= %(start)s AND e.at < %(end)s
       AND e.type IN ({types})
    UNION ALL
    SELECT d.event_id, d.job_id, d.type, d.at, d.queue_name, d.task_name
      FROM jobdash_deleted_job_events d
     WHERE d.at >= %(start)s AND d.at < %(end)s AND d.type IN ({types})
       AND NOT EXISTS (SELECT 1 FROM procrastinate_events r WHERE r.id = d.event_id)
), measured AS (
    SELECT ev.*, CASE WHEN ev.type IN ({ends}) THEN
               extract(epoch FROM ev.at - (
                   SELECT max(s.at) FROM (
                       SELECT at FROM procrastinate_events
                        WHERE job_id = ev.job_id AND type = 'started' AND at <= ev.at
                       UNION ALL
                       SELECT at FROM jobdash_deleted_job_events
                        WHERE job_id = ev.job_id AND type = 'started' AND at <= ev.at
                   ) s
               )) * 1000
           END AS duration_ms
      FROM ev
), binned AS (
    SELECT measured.*, width_bucket(duration_ms, {bounds}) AS bin FROM measured
)
SELECT date_trunc('minute', at) AS bucket, queue_name, task_name,
           {counts},
           count(duration_ms)::int AS duration_count,
           coalesce(sum(duration_ms), 0) AS duration_sum_ms,
           max(duration_ms) AS duration_max_ms,
           {bins}
  FROM binned
 GROUP BY 1, 2, 3
"""


REFERENCE_EVENT_BUCKETS_SQL = _reference_event_buckets_sql()
