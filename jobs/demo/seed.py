"""`jobdash seed`: a realistic Procrastinate dataset built with set-based SQL, fast.

Shape: about 94 % succeeded, 5 % failed, the rest todo/doing/cancelled; spread over `days`
days, with a busy last hour (`last_hour_per_min` jobs per minute, at most 60 % of all jobs);
several queues and tasks; one error row per failed attempt in jobdash_job_errors; a few
workers (one instrumented and healthy, one at 97 % CPU, one 61 minutes silent, one not
instrumented); periodic definitions, one of which missed its last run.

Procrastinate's triggers are disabled during the bulk insert (they would stamp every event with
now() and send one NOTIFY per job); the events are written here with their historical times.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

import psycopg
from croniter import croniter

from jobdash.core.rows import fetch_one

# (queue, task, typical duration in ms): durations differ per task so averages look real.
TASKS = [
    ("default", "app.tasks.cleanup_sessions", 120),
    ("default", "app.tasks.sync_inventory", 800),
    ("emails", "app.tasks.send_welcome_email", 250),
    ("emails", "app.tasks.send_digest", 600),
    ("reports", "app.tasks.build_report", 2500),
    ("webhooks", "app.tasks.deliver_webhook", 300),
    ("billing", "app.tasks.charge_invoice", 450),
]

EXCEPTIONS = [
    ("TimeoutError", "upstream did not answer within 30 s"),
    ("ConnectionError", "connection reset by peer"),
    ("ValueError", "invalid literal for int() with base 10: 'abc'"),
    ("KeyError", "'customer_id'"),
    ("HTTPError", "502 Bad Gateway from https://hooks.example.com/endpoint"),
]

PERIODIC = [
    ("app.tasks.cleanup_sessions", "", "*/5 * * * *", "default"),
    ("app.tasks.build_report", "nightly", "0 3 * * *", "reports"),
    ("app.tasks.send_digest", "", "0 8 * * 1-5", "emails"),
    ("app.tasks.sync_inventory", "", "* * * * * */15", "default"),
    # Never deferred (no defer row): shown as due / missed.
    ("app.tasks.charge_invoice", "hourly", "0 * * * *", "billing"),
]

_SETUP = """
create temp table jobdash_seed_jobs on commit drop as
with raw as (
    select g,
           (g <= %(hour_jobs)s) as recent,
           random() as r_status,
           random() as r_sub,
           (random() * %(task_count)s)::int %% %(task_count)s as task_index,
           random() as r_time,
           random() as r_wait,
           random() as r_exec,
           1 + (random() * 2.999)::int as failed_attempts
    from generate_series(1, %(n)s) as g
)
select raw.*,
       case when recent
            then %(now)s - raw.r_time * interval '1 hour'
            else %(now)s - interval '1 hour' - raw.r_time * %(older_span)s::interval
       end as deferred_at,
       case
           when r_status < 0.94 then 'succeeded'
           when r_status < 0.99 then 'failed'
           when not recent then 'cancelled'
           when r_sub < 0.45 then 'todo'
           when r_sub < 0.75 then 'doing'
           else 'cancelled'
       end::procrastinate_job_status as status
from raw
"""

_TIMES = """
create temp table jobdash_seed_timed on commit drop as
select s.*,
       t.queue_name, t.task_name, t.duration_ms,
       %(base_id)s + row_number() over (order by s.deferred_at, s.g) as job_id,
       s.deferred_at + (s.r_wait * 2) * interval '1 second' as first_start,
       (t.duration_ms * (0.4 + s.r_exec * 1.2)) * interval '1 millisecond' as run_time,
       case when s.status = 'failed' then s.failed_attempts else 1 end as attempt_count
from jobdash_seed_jobs s
join (select * from unnest(%(queues)s::text[], %(tasks)s::text[], %(durations)s::int[])
      with ordinality as t(queue_name, task_name, duration_ms, idx)) t
  on t.idx = s.task_index + 1
"""

# One row per attempt (start, end); retries wait 5 s between attempts. Terminal times are
# clamped to now so nothing finishes in the future.
_ATTEMPTS = """
create temp table jobdash_seed_attempts on commit drop as
select j.job_id, j.status, a.n as attempt, j.attempt_count, j.deferred_at,
       least(j.first_start + (a.n - 1) * (j.run_time + interval '5 seconds'),
             %(now)s) as started_at,
       least(j.first_start + (a.n - 1) * (j.run_time + interval '5 seconds') + j.run_time,
             %(now)s) as ended_at
from jobdash_seed_timed j
cross join lateral generate_series(1, j.attempt_count) as a(n)
where j.status in ('succeeded', 'failed', 'doing')
"""

_INSERT_JOBS = """
insert into procrastinate_jobs
    (id, queue_name, task_name, priority, args, status, scheduled_at, attempts, worker_id)
select job_id, queue_name, task_name, 0,
       jsonb_build_object('customer_id', g %% 5000, 'request', md5(g::text),
                          'attempt_hint', attempt_count),
       status,
       case when status = 'todo' and r_wait < 0.3
            then %(now)s + (r_exec * 6) * interval '1 hour' end,
       case when status in ('succeeded', 'failed') then attempt_count else 0 end,
       case when status = 'doing' then (%(worker_ids)s::bigint[])[1 + g %% %(worker_count)s] end
from jobdash_seed_timed
order by job_id
"""

_INSERT_EVENTS = """
insert into procrastinate_events (job_id, type, at)
select job_id, type::procrastinate_job_event_type, at from (
    select job_id, 'deferred' as type, deferred_at as at, 0 as step from jobdash_seed_timed
    union all
    select job_id, 'scheduled', %(now)s + (r_exec * 6) * interval '1 hour', 1
      from jobdash_seed_timed where status = 'todo' and r_wait < 0.3
    union all
    select job_id, 'cancelled', deferred_at + interval '30 seconds', 1
      from jobdash_seed_timed where status = 'cancelled'
    union all
    select job_id, 'started', started_at, 2 * attempt from jobdash_seed_attempts
    union all
    select job_id,
           case when attempt < attempt_count then 'deferred_for_retry' else status::text end,
           ended_at, 2 * attempt + 1
      from jobdash_seed_attempts where status <> 'doing'
) e
order by at, job_id, step
"""

_INSERT_ERRORS = """
insert into jobdash_job_errors
    (job_id, attempt, exception_type, message, traceback, will_retry, recorded_at)
select a.job_id, a.attempt,
       (%(exc_types)s::text[])[1 + (a.job_id + a.attempt) %% %(exc_count)s],
       (%(exc_messages)s::text[])[1 + (a.job_id + a.attempt) %% %(exc_count)s],
       'Traceback (most recent call last):\n  File "app/tasks.py", line 42, in run\n'
           || '    raise error',
       a.attempt < a.attempt_count,
       a.ended_at
from jobdash_seed_attempts a
where a.status = 'failed'
order by a.ended_at
"""


@dataclass(frozen=True)
class SeedReport:
    jobs: int
    events: int
    errors: int
    workers: int
    periodic_tasks: int
    seconds: float


class _Start(NamedTuple):
    now: datetime  # the transaction's now(): every time of the dataset is relative to it
    base_id: int  # the highest job id before: the new jobs come after it


class _Inserted(NamedTuple):
    events: int
    errors: int


def _worker_id(worker_id: int) -> int:
    return worker_id


def _insert_workers(conn: psycopg.Connection, now_sql: str) -> list[int]:
    """Four workers: healthy, hot CPU, silent for 61 minutes, not instrumented."""
    specs = [
        (f"{now_sql} - interval '3 seconds'", ("web-1", 4101, 12.5, 180.0)),
        (f"{now_sql} - interval '5 seconds'", ("web-2", 4102, 97.0, 512.0)),
        (f"{now_sql} - interval '61 minutes'", ("batch-1", 5201, 3.0, 95.0)),
        (f"{now_sql} - interval '4 seconds'", None),
    ]
    ids = []
    for heartbeat_sql, host in specs:
        worker_id = fetch_one(
            conn,
            _worker_id,
            "insert into procrastinate_workers (last_heartbeat) "  # noqa: S608 - fixed text
            f"select {heartbeat_sql} returning id",
        )
        ids.append(worker_id)
        if host:
            hostname, pid, cpu, memory = host
            conn.execute(
                """
                insert into jobdash_workers (worker_id, worker_name, hostname, pid, queues,
                    concurrency, cpu_percent, memory_mb, started_at, updated_at)
                values (%s, %s, %s, %s, %s, 50, %s, %s, now() - interval '2 hours', now())
                """,
                (worker_id, f"worker-{hostname}", hostname, pid, None, cpu, memory),
            )
    return ids


def _insert_periodic(conn: psycopg.Connection, now: datetime) -> None:
    for task_name, periodic_id, cron, queue in PERIODIC:
        conn.execute(
            """
            insert into jobdash_periodic_tasks (task_name, periodic_id, cron, queue_name,
                published_by, first_published_at)
            values (%s, %s, %s, %s, 'jobdash seed', now() - interval '1 year')
            on conflict (task_name, periodic_id) do update set cron = excluded.cron,
                queue_name = excluded.queue_name, published_at = now()
            """,
            (task_name, periodic_id, cron, queue),
        )
    # The latest tick of each periodic task except the last one was deferred on time.
    for task_name, periodic_id, cron, _queue in PERIODIC[:-1]:
        # croniter's get_prev is strictly before its start: start just after now.
        tick_at = croniter(cron, now + timedelta(microseconds=1)).get_prev(datetime)
        tick = int(tick_at.timestamp())
        conn.execute(
            """
            insert into procrastinate_periodic_defers (task_name, periodic_id, defer_timestamp)
            values (%s, %s, %s) on conflict do nothing
            """,
            (task_name, periodic_id, tick),
        )


def seed(conninfo: str, jobs: int, *, days: float = 7, last_hour_per_min: int = 1000) -> SeedReport:
    """Add `jobs` jobs (with events, errors, workers, periodic tasks) in one transaction."""
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    if days * 24 <= 1:
        raise ValueError("days must cover more than one hour")
    started = time.monotonic()
    hour_jobs = min(last_hour_per_min * 60, int(jobs * 0.6))
    with psycopg.connect(conninfo) as conn:
        start = _begin(conn)
        worker_ids = _insert_workers(conn, "now()")
        params = _dataset_params(jobs, days, hour_jobs, start, worker_ids)
        inserted = _insert_dataset(conn, params)
        _finish(conn, start.now)
        conn.commit()
    _refresh_statistics(conninfo)
    return SeedReport(
        jobs=jobs,
        events=inserted.events,
        errors=inserted.errors,
        workers=len(worker_ids),
        periodic_tasks=len(PERIODIC),
        seconds=time.monotonic() - started,
    )


def _begin(conn: psycopg.Connection) -> _Start:
    """Settings for the bulk insert, procrastinate_jobs locked with its triggers off."""
    conn.execute("set local timezone = 'UTC'")
    conn.execute("set local work_mem = '256MB'")
    # Lock first so the reserved id range stays ours; disabling triggers takes the same lock.
    conn.execute("lock table procrastinate_jobs in access exclusive mode")
    conn.execute("alter table procrastinate_jobs disable trigger user")
    return fetch_one(conn, _Start, "select now(), coalesce(max(id), 0) from procrastinate_jobs")


def _dataset_params(
    jobs: int, days: float, hour_jobs: int, start: _Start, worker_ids: list[int]
) -> dict[str, object]:
    """The parameters of the dataset's statements (_SETUP … _INSERT_ERRORS)."""
    return {
        "n": jobs,
        "hour_jobs": hour_jobs,
        "now": start.now,
        "older_span": f"{days * 24 - 1} hours",
        "task_count": len(TASKS),
        "queues": [q for q, _, _ in TASKS],
        "tasks": [t for _, t, _ in TASKS],
        "durations": [d for _, _, d in TASKS],
        "base_id": start.base_id,
        "worker_ids": worker_ids,
        "worker_count": len(worker_ids),
        "exc_types": [e for e, _ in EXCEPTIONS],
        "exc_messages": [m for _, m in EXCEPTIONS],
        "exc_count": len(EXCEPTIONS),
    }


def _insert_dataset(conn: psycopg.Connection, params: dict[str, object]) -> _Inserted:
    """The jobs, their events and their errors; how many events and errors."""
    for statement in (_SETUP, _TIMES, _ATTEMPTS, _INSERT_JOBS):
        conn.execute(statement, params)
    events = conn.execute(_INSERT_EVENTS, params).rowcount
    errors = conn.execute(_INSERT_ERRORS, params).rowcount
    return _Inserted(events, errors)


def _finish(conn: psycopg.Connection, now: datetime) -> None:
    """What the disabled triggers would have kept, the id sequence, the periodic tasks; the
    triggers back on."""
    # The failed ledger's and list's triggers were off too: rebuild both from the jobs. With
    # statistics first: planned on tables it believes empty, the recount's lookup of each
    # failed job's events is a sequential scan per job (a 10 M seed never finished).
    conn.execute("analyze procrastinate_jobs, procrastinate_events, jobdash_job_errors")
    conn.execute("select jobdash_recount_failed()")
    conn.execute(
        "select setval(pg_get_serial_sequence('procrastinate_jobs', 'id'), "
        "greatest((select max(id) from procrastinate_jobs), 1))"
    )
    _insert_periodic(conn, now)
    conn.execute("alter table procrastinate_jobs enable trigger user")


def _refresh_statistics(conninfo: str) -> None:
    """Fresh statistics and visibility map, so the planner and index-only scans see the data."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for table in (
            "procrastinate_jobs",
            "procrastinate_events",
            "jobdash_job_errors",
            "jobdash_failed_counts",
            "jobdash_failed_jobs",
        ):
            conn.execute(f"vacuum (analyze) {table}")  # noqa: S608 - fixed names
