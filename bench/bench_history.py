"""Benchmark of the history charts, of one rollup run, and of the rollup at scale.

Charts: builds, in a scratch database, 90 days of history at 1,000 jobs/min (12 queue×task
series, minute buckets for the last 14 days, hour buckets for 90 days) with set-based SQL
straight into the bucket tables, plus one minute of 1,000 real jobs with their events. Prints
median and p95 per chart query and for the rollup. Targets: query ≤ 50 ms median, rollup ≤ 1 s.

Scale (--part scale): `jobdash seed` databases of 100 k and 1 M jobs with the same last hour
(1,000 jobs/min), the marks a worker running every minute leaves, and the rollup state a run
at the seed's end would find. Times one ordinary run (median, p95), the same run without any
mark, the queue-depth sample, the event-bucket step (old and new SQL), and one `--backfill`.
Runs against whichever Jobdash is on PYTHONPATH (an older checkout gives the "before" column;
steps it lacks are skipped).

    python bench/bench_history.py [--server postgresql://postgres@127.0.0.1:5432/postgres]
        [--part charts|scale|all] [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import psycopg
from bench_common import p95, scratch_database
from psycopg import sql

from jobdash.app.read.history import (
    RANGES,
    load_error_groups,
    load_queue_depth,
    load_throughput,
    query_params,
    resolution,
    throughput_source,
)
from jobdash.core.schema import migrate
from jobdash.jobs.demo.seed import seed
from jobdash.jobs.maintenance import rollup as rollup_module
from jobdash.jobs.maintenance.rollup import ERROR_DAYS_FROM_HOURS_SQL, run_rollup

try:
    from jobdash.core.history_tables import HISTOGRAM_COLUMNS, METRIC_SUMS
except ImportError:  # a checkout from before core/history_tables.py (the "before" column)
    from jobdash.jobs.maintenance.rollup import HISTOGRAM_COLUMNS, METRIC_SUMS

QUEUES = 4
TASKS_PER_QUEUE = 3
JOBS_PER_MINUTE = 1000

# Durations spread evenly over bins 5..11 (10 ms .. 1 s).
_BINS = ", ".join("n / 7" if 5 <= i <= 11 else "0" for i in range(len(HISTOGRAM_COLUMNS)))
FILL_HISTORY = f"""
INSERT INTO {{table}}
SELECT b, 'queue' || q, 'task' || t, n, n - f, f, f / 2, 0, 0, n, n * 120.0, 5000.0, {_BINS}
  FROM generate_series(date_trunc(%(unit)s, now() - %(span)s::interval),
                       date_trunc(%(unit)s, now()), %(step)s::interval) b,
       generate_series(1, %(queues)s) q, generate_series(1, %(tasks)s) t,
       LATERAL (SELECT %(per_series)s::int AS n, (%(per_series)s / 50)::int AS f) c
"""
FILL_DEPTH = """
INSERT INTO {table}
SELECT b, 'queue' || q, %(samples)s, 100 * %(samples)s, 10 * %(samples)s, 8 * %(samples)s,
       150, 12, 8, 4.5
  FROM generate_series(date_trunc(%(unit)s, now() - %(span)s::interval),
                       date_trunc(%(unit)s, now()), %(step)s::interval) b,
       generate_series(1, %(queues)s) q
"""
FILL_ERRORS = """
INSERT INTO {table}
SELECT b, 'queue' || q, 'task' || t, 'Error' || e, 3, b, b + interval '30 seconds', 'boom', 1
  FROM generate_series(date_trunc(%(unit)s, now() - %(span)s::interval),
                       date_trunc(%(unit)s, now()), %(step)s::interval) b,
       generate_series(1, %(queues)s) q, generate_series(1, %(tasks)s) t,
       generate_series(1, 3) e
"""
ONE_MINUTE_OF_JOBS = """
WITH new AS (
    INSERT INTO procrastinate_jobs (queue_name, task_name, args, status)
    SELECT 'queue' || (i %% %(queues)s + 1), 'task' || (i %% %(tasks)s + 1), '{}', 'todo'
      FROM generate_series(1, %(jobs)s) i
    RETURNING id
)
SELECT array_agg(id) FROM new
"""


def _fill(conn: psycopg.Connection) -> None:
    series = QUEUES * TASKS_PER_QUEUE
    shapes = {
        "minute": {"unit": "minute", "span": "14 days", "step": "1 minute", "samples": 1},
        "hour": {"unit": "hour", "span": "90 days", "step": "1 hour", "samples": 60},
    }
    for res, shape in shapes.items():
        per_series = JOBS_PER_MINUTE * (60 if res == "hour" else 1) // series
        params = {**shape, "queues": QUEUES,
                  "tasks": TASKS_PER_QUEUE, "per_series": per_series}  # fmt: skip
        for template, table in (
            (FILL_HISTORY, f"jobdash_history_{res}"),
            (FILL_DEPTH, f"jobdash_queue_depth_{res}"),
            (FILL_ERRORS, f"jobdash_error_groups_{res}"),
        ):
            conn.execute(sql.SQL(template).format(table=sql.Identifier(table)), params)
    # The derived levels, as the rollup keeps them: per-queue rows and error-group days.
    for res in shapes:
        conn.execute(
            f"INSERT INTO jobdash_history_queue_{res} SELECT bucket, queue_name, {METRIC_SUMS}"
            f" FROM jobdash_history_{res} GROUP BY 1, 2"
        )
    conn.execute(ERROR_DAYS_FROM_HOURS_SQL, {"start": "-infinity", "end": "infinity"})
    conn.execute("UPDATE jobdash_rollup_state SET last_run_at = now()")
    conn.execute("VACUUM ANALYZE")


def _time(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), p95(samples)


def _bench_queries(conn: psycopg.Connection, runs: int) -> list[tuple[str, float, float]]:
    results = []
    now = conn.execute("SELECT now()").fetchone()[0]
    for name, history_range in RANGES.items():
        res = resolution(history_range, 14)
        params = query_params(history_range, now - history_range.span, now)
        one_task = query_params(history_range, now - history_range.span, now, task="task1")
        # As the page reads them: per-queue rows unless a task is filtered.
        all_tasks = throughput_source(res, None, True, name)
        queries = {
            "throughput+durations": lambda p=params, r=all_tasks: load_throughput(conn, r, p),
            "throughput, one task": lambda p=one_task, r=res: load_throughput(conn, r, p),
            "queue depth+latency": lambda p=params, r=res: load_queue_depth(conn, r, p),
            "error groups": lambda p=params, r=res: load_error_groups(conn, r, p),
        }
        for label, fn in queries.items():
            median, p95_ms = _time(fn, runs)
            results.append((f"{name} {label} ({res})", median, p95_ms))
    return results


def _bench_rollup(conn: psycopg.Connection, runs: int) -> tuple[float, float]:
    ids = conn.execute(
        ONE_MINUTE_OF_JOBS, {"queues": QUEUES, "tasks": TASKS_PER_QUEUE, "jobs": JOBS_PER_MINUTE}
    ).fetchone()[0]
    conn.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = ANY(%s)", (ids,))
    conn.execute(
        "UPDATE procrastinate_jobs SET status = CASE WHEN id %% 50 = 0 THEN 'failed'"
        " ELSE 'succeeded' END::procrastinate_job_status WHERE id = ANY(%s)",
        (ids,),
    )
    conn.execute("VACUUM ANALYZE procrastinate_events")
    return _time(lambda: run_rollup(conn), runs)


@contextmanager
def _scratch_database(server: str, suffix: str = "") -> Iterator[str]:
    """A migrated database of its own, dropped afterwards."""
    with scratch_database(server, f"jobdash_bench_history_{os.getpid()}{suffix}") as url:
        migrate(url)
        yield url


def _leave_marks(conn: psycopg.Connection, until: datetime) -> None:
    """The marks of a rollup that ran every minute for 3 hours before `until`. The seed writes
    events in `at` order, so the highest id of the events before t is a valid mark at t."""
    conn.execute(
        """
        INSERT INTO jobdash_rollup_marks (taken_at, last_event_id)
        SELECT minute + interval '1 minute', max(top) OVER (ORDER BY minute)
          FROM (SELECT date_trunc('minute', at) AS minute, max(id) AS top
                  FROM procrastinate_events WHERE at < %(until)s GROUP BY 1) m
        ORDER BY 1 DESC LIMIT 180
        """,
        {"until": until},
    )


def _as_if_running_at(conn: psycopg.Connection, at: datetime) -> None:
    """The state that pins the next run's window to what a run at `at` (the seed's end) would
    recompute, its previous run a minute earlier: the benchmark's runs happen later, after a
    quiet time with no events, and each one starts again from this state."""
    previous = at - timedelta(minutes=1)
    has_recompute_from = conn.execute(
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_name = 'jobdash_rollup_state' AND column_name = 'recompute_from'"
    ).fetchone()[0]
    conn.execute(
        "UPDATE jobdash_rollup_state SET last_run_at = %(previous)s, last_window_start = NULL"
        + (", recompute_from = %(trailing)s" if has_recompute_from else ""),
        {"previous": previous, "trailing": at - rollup_module.TRAILING_WINDOW},
    )


def _time_rollup(url: str, seed_now: datetime, runs: int) -> tuple[float, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        samples = []
        for _ in range(runs):
            _as_if_running_at(conn, seed_now)
            started = time.perf_counter()
            run_rollup(conn)
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), p95(samples)


def _event_step(conn: psycopg.Connection, seed_now: datetime, runs: int) -> list[tuple]:
    """The event-bucket SELECT alone, old and new SQL, over 10 and 60 minutes before the seed's
    end (with the marks' id floor, as the rollup reads it)."""
    try:
        from jobdash.core.history_tables import EVENT_BUCKETS_SQL, FLOOR_ID_SQL, NO_CEILING_ID
        from tests.history_helpers import REFERENCE_EVENT_BUCKETS_SQL
    except ImportError:
        return []
    results = []
    for minutes in (10, 60):
        start = (seed_now - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
        floor_id = conn.execute(FLOOR_ID_SQL, {"start": start}).fetchone()[0]
        params = {"start": start, "end": seed_now, "floor_id": floor_id,
                  "ceiling_id": NO_CEILING_ID}  # fmt: skip
        timed = [
            _time(lambda q=query, p=params: conn.execute(q, p).fetchall(), runs)
            for query in (REFERENCE_EVENT_BUCKETS_SQL, EVENT_BUCKETS_SQL)
        ]
        results.append((minutes, *timed))
    return results


def _bench_scale(server: str, sizes: list[int], runs: int) -> None:
    rows: list[tuple[str, str, float, float]] = []
    for size in sizes:
        with _scratch_database(server, f"_{size}") as url:
            started = time.perf_counter()
            seed(url, size, days=7, last_hour_per_min=JOBS_PER_MINUTE)
            with psycopg.connect(url, autocommit=True) as conn:
                seed_now = conn.execute(
                    "SELECT max(at) FROM procrastinate_events WHERE type <> 'scheduled'"
                ).fetchone()[0]
                _leave_marks(conn, seed_now)
                conn.execute("VACUUM ANALYZE")
            print(f"seeded {size:,} jobs in {time.perf_counter() - started:.1f} s")
            label = f"{size // 1000:,} k"
            rows.append((label, "rollup run (marks as a worker leaves them)",
                         *_time_rollup(url, seed_now, runs)))  # fmt: skip
            with psycopg.connect(url, autocommit=True) as conn:
                marks = conn.execute("SELECT * FROM jobdash_rollup_marks").fetchall()
                conn.execute("DELETE FROM jobdash_rollup_marks")
            rows.append((label, "rollup run without any mark (after install)",
                         *_time_rollup(url, seed_now, max(3, runs // 4))))  # fmt: skip
            with psycopg.connect(url, autocommit=True, options="-c jit=off") as conn:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO jobdash_rollup_marks VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        marks,
                    )
                with conn.transaction(force_rollback=True):
                    depth = rollup_module.DEPTH_SAMPLE_SQL, {"start": seed_now}
                    timed = _time(lambda d=depth: conn.execute(*d), runs)
                    rows.append((label, "queue-depth sample alone", *timed))
                for minutes, old, new in _event_step(conn, seed_now, max(3, runs // 4)):
                    rows.append((label, f"event-bucket step, {minutes} min, old SQL", *old))
                    rows.append((label, f"event-bucket step, {minutes} min, new SQL", *new))
                started = time.perf_counter()
                run_rollup(conn, backfill=True)
                backfill_ms = (time.perf_counter() - started) * 1000
                rows.append((label, "rollup --backfill (one run)", backfill_ms, backfill_ms))
    print(f"{'history':<8} {'step':<48} {'median ms':>10} {'p95 ms':>10}")
    for label, step, median, p95_ms in rows:
        print(f"{label:<8} {step:<48} {median:>10.1f} {p95_ms:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("JOBDASH_TEST_DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--part", choices=["charts", "scale", "all"], default="charts")
    parser.add_argument("--sizes", default="100000,1000000", help="jobs per scale database")
    args = parser.parse_args()
    if args.part in ("scale", "all"):
        _bench_scale(args.server, [int(n) for n in args.sizes.split(",")], args.runs)
    if args.part == "scale":
        return
    with (
        _scratch_database(args.server) as url,
        psycopg.connect(url, autocommit=True, options="-c timezone=UTC -c jit=off") as conn,
    ):
        start = time.perf_counter()
        _fill(conn)
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM jobdash_history_minute),"
            " (SELECT count(*) FROM jobdash_history_hour),"
            " (SELECT count(*) FROM jobdash_history_queue_hour),"
            " (SELECT count(*) FROM jobdash_error_groups_day)"
        ).fetchone()
        print(f"built {counts[0]:,} minute rows, {counts[1]:,} hour rows, "
              f"{counts[2]:,} per-queue hour rows, {counts[3]:,} error-group day rows "
              f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
        print(f"{'query':<48} {'median ms':>10} {'p95 ms':>10}")
        for label, median, p95_ms in _bench_queries(conn, args.runs):
            print(f"{label:<48} {median:>10.1f} {p95_ms:>10.1f}")
        median, p95_ms = _bench_rollup(conn, max(3, args.runs // 4))
        print(f"{'rollup, one minute of 1,000 jobs':<48} {median:>10.1f} {p95_ms:>10.1f}")


if __name__ == "__main__":
    main()
