"""What each kind of rule looks at, read from the database: one small query per rule.

The worker side does not import the dashboard's loaders (app/), so the few signals alerts need
are read here. They follow the dashboard's definitions: a worker is healthy with a heartbeat
younger than JOBDASH_HEALTHY_HEARTBEAT_S and CPU below 95 % (app/rules/health.py); a queue's
latency is the wait of its oldest ready job (lowest id) since it became due; a periodic run is
missed when its latest tick is older than the grace and was never deferred.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import LiteralString
from urllib.parse import urlencode

import psycopg
from croniter import croniter

from jobdash.core.alerts.config import Rule

CPU_UNHEALTHY_PERCENT = 95.0

FAILURE_COUNTS_SQL = """
SELECT coalesce(sum(succeeded), 0)::bigint, coalesce(sum(failed), 0)::bigint
  FROM jobdash_history_minute
 WHERE bucket >= date_trunc('minute', now()) - make_interval(mins => %(minutes)s - 1)
   AND (%(queue)s::text IS NULL OR queue_name = %(queue)s)
   AND (%(task)s::text IS NULL OR task_name = %(task)s)
"""
# The same latency as the dashboard's (jobdash_open_jobs: since when the longest-waiting ready
# job has been runnable), among the oldest OPEN_JOBS_CAP open jobs: their lowest ids hold the
# longest waits, so the cap bounds the read, not the answer.
OPEN_JOBS_CAP = 100_000
QUEUE_LATENCY_SQL = """
SELECT queue_name, extract(epoch FROM now() - oldest_ready)::float8
  FROM jobdash_open_jobs(%(cap)s)
 WHERE oldest_ready IS NOT NULL AND (%(queue)s::text IS NULL OR queue_name = %(queue)s)
 ORDER BY 2 DESC
 LIMIT 1
"""
HEALTHY_WORKERS_SQL = """
SELECT count(*)
  FROM procrastinate_workers w
  LEFT JOIN jobdash_workers jw ON jw.worker_id = w.id
 WHERE w.last_heartbeat > now() - make_interval(secs => %(healthy_s)s)
   AND (jw.cpu_percent IS NULL OR jw.cpu_percent < %(cpu)s)
   AND (jw.queues IS NULL OR %(queue)s = ANY (jw.queues))
"""
STALLED_SQL = """
SELECT count(*)
  FROM procrastinate_jobs j
 WHERE j.status = 'doing'
   AND NOT EXISTS (
       SELECT 1 FROM procrastinate_workers w
         LEFT JOIN jobdash_workers jw ON jw.worker_id = w.id
        WHERE w.id = j.worker_id
          AND w.last_heartbeat > now() - make_interval(secs => %(healthy_s)s)
          AND (jw.cpu_percent IS NULL OR jw.cpu_percent < %(cpu)s))
"""
PERIODIC_SQL = """
SELECT now(), p.task_name, p.periodic_id, p.cron, p.first_published_at,
       (SELECT to_timestamp(max(d.defer_timestamp)) FROM procrastinate_periodic_defers d
         WHERE d.task_name = p.task_name AND d.periodic_id = p.periodic_id)
  FROM jobdash_periodic_tasks p
 WHERE p.task_name NOT LIKE 'jobdash:%%'
   AND (%(task)s::text IS NULL OR p.task_name = %(task)s)
 ORDER BY p.task_name, p.periodic_id
"""
ROLLUP_SQL = "SELECT extract(epoch FROM now() - last_run_at)::float8 FROM jobdash_rollup_state"


@dataclass(frozen=True)
class Observation:
    """What a rule saw: whether it fires, the value compared, and a line for people."""

    firing: bool
    value: float | None
    summary: str
    link: str  # a path of the dashboard, with its query ("dashboard", "failed_jobs?queue=…")


def _number(
    conn: psycopg.Connection, query: LiteralString, params: dict[str, object]
) -> float | None:
    """The one number `query` returns, None when it returns no row or NULL."""
    row = conn.execute(query, params).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def failure_rate(conn: psycopg.Connection, rule: Rule) -> Observation:
    row = conn.execute(
        FAILURE_COUNTS_SQL, {"minutes": rule.minutes, "queue": rule.queue, "task": rule.task}
    ).fetchone()
    succeeded, failed = (int(row[0]), int(row[1])) if row else (0, 0)
    total = succeeded + failed
    rate = failed / total * 100 if total else 0.0
    firing = total >= rule.min_count and rate > rule.threshold
    filters = {k: v for k, v in (("queue", rule.queue), ("task", rule.task)) if v}
    return Observation(
        firing,
        rate,
        f"{rate:.0f} % failed ({failed} of {total}) in the last {rule.minutes} min"
        + ("" if total >= rule.min_count else f", fewer than {rule.min_count}: not judged"),
        "failed_jobs" + (f"?{urlencode(filters)}" if filters else ""),
    )


def queue_latency(conn: psycopg.Connection, rule: Rule) -> Observation:
    row = conn.execute(QUEUE_LATENCY_SQL, {"queue": rule.queue, "cap": OPEN_JOBS_CAP}).fetchone()
    queue, wait = (row[0], max(0.0, float(row[1] or 0))) if row else (rule.queue, 0.0)
    summary = (
        f"the oldest ready job of queue {queue} has waited {wait:.0f} s"
        if row
        else f"no job waiting in {f'queue {rule.queue}' if rule.queue else 'any queue'}"
    )
    return Observation(wait > rule.threshold, wait, summary, "dashboard")


def no_healthy_worker(conn: psycopg.Connection, rule: Rule, healthy_s: float) -> Observation:
    count = int(
        _number(
            conn,
            HEALTHY_WORKERS_SQL,
            {"healthy_s": healthy_s, "cpu": CPU_UNHEALTHY_PERCENT, "queue": rule.queue},
        )
        or 0
    )
    return Observation(
        count == 0,
        float(count),
        f"{count} healthy worker{'s' if count != 1 else ''} listening on queue {rule.queue}",
        "dashboard",
    )


def stalled_jobs(conn: psycopg.Connection, rule: Rule, healthy_s: float) -> Observation:
    count = int(
        _number(conn, STALLED_SQL, {"healthy_s": healthy_s, "cpu": CPU_UNHEALTHY_PERCENT}) or 0
    )
    return Observation(
        count > rule.threshold,
        float(count),
        f"{count} stalled job{'s' if count != 1 else ''} (doing, worker gone or unhealthy)",
        "dashboard",
    )


def latest_tick(cron: str, now: datetime) -> datetime:
    """The latest run time at or before `now` (Procrastinate reads cron with croniter, UTC)."""
    return croniter(cron, now + timedelta(microseconds=1)).get_prev(datetime)


def periodic_missed(conn: psycopg.Connection, rule: Rule) -> Observation:
    missed: list[str] = []
    worst = 0.0
    for now, task, periodic_id, cron, known_since, last in conn.execute(
        PERIODIC_SQL, {"task": rule.task}
    ).fetchall():
        try:
            tick = latest_tick(cron, now)
        except (ValueError, KeyError):
            continue  # a cron croniter cannot read: the scheduler page says so
        late = (now - tick).total_seconds()
        if late <= rule.grace_s or (known_since is not None and tick < known_since):
            continue
        if last is None or last < tick:
            missed.append(task + (f" [{periodic_id}]" if periodic_id else ""))
            worst = max(worst, late)
    summary = (
        f"missed: {', '.join(missed[:5])}{' …' if len(missed) > 5 else ''} "
        f"(latest run due {worst:.0f} s ago, never deferred)"
        if missed
        else "every periodic run deferred on time"
    )
    return Observation(bool(missed), worst, summary, "dashboard")


def rollup_behind(conn: psycopg.Connection, rule: Rule) -> Observation:
    lag = _number(conn, ROLLUP_SQL, {})
    if lag is None:
        return Observation(True, None, "the history rollup never ran", "history")
    minutes = lag / 60
    return Observation(
        minutes > rule.threshold, minutes, f"the last rollup ran {minutes:.0f} min ago", "history"
    )


def observe(conn: psycopg.Connection, rule: Rule, *, healthy_s: float) -> Observation:
    """Evaluate one rule now."""
    if rule.kind == "failure_rate":
        return failure_rate(conn, rule)
    if rule.kind == "queue_latency":
        return queue_latency(conn, rule)
    if rule.kind == "no_healthy_worker":
        return no_healthy_worker(conn, rule, healthy_s)
    if rule.kind == "stalled_jobs":
        return stalled_jobs(conn, rule, healthy_s)
    if rule.kind == "periodic_missed":
        return periodic_missed(conn, rule)
    if rule.kind == "rollup_behind":
        return rollup_behind(conn, rule)
    raise ValueError(f"unknown rule kind {rule.kind!r}")


KNOWN_QUEUES_SQL = """
SELECT DISTINCT queue_name FROM jobdash_history_queue_hour
 WHERE bucket >= now() - interval '30 days'
UNION SELECT DISTINCT queue_name FROM jobdash_periodic_tasks
UNION SELECT DISTINCT unnest(queues) FROM jobdash_workers WHERE stopped_at IS NULL
"""


def known_queues(conn: psycopg.Connection) -> set[str]:
    """Queues the database has seen lately (history, schedules, running workers)."""
    return {row[0] for row in conn.execute(KNOWN_QUEUES_SQL) if row[0]}
