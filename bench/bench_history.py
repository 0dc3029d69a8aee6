"""Benchmark of the history charts and of one rollup run.

Builds, in a scratch database, 90 days of history at 1,000 jobs/min (12 queue×task series,
minute buckets for the last 14 days, hour buckets for 90 days) with set-based SQL straight
into the bucket tables, plus one minute of 1,000 real jobs with their events. Prints median
and p95 per chart query and for the rollup. Targets: query ≤ 50 ms median, rollup ≤ 1 s.

    python bench/bench_history.py [--server postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jobdash.app.read.history import (
    RANGES,
    load_error_groups,
    load_queue_depth,
    load_throughput,
    query_params,
    resolution,
    throughput_source,
)
from jobdash.core.history_tables import HISTOGRAM_COLUMNS, METRIC_SUMS
from jobdash.core.migrate import migrate
from jobdash.jobs.maintenance.rollup import ERROR_DAYS_FROM_HOURS_SQL, run_rollup

QUEUES = 4
TASKS_PER_QUEUE = 3
JOBS_PER_MINUTE = 1000

# Durations spread evenly over bins 5..11 (10 ms .. 1 s).
_BINS = ", ".join(
    "n / 7" if 5 <= i <= 11 else "0" for i in range(len(HISTOGRAM_COLUMNS))
)
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
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


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
            median, p95 = _time(fn, runs)
            results.append((f"{name} {label} ({res})", median, p95))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("JOBDASH_TEST_DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    name = f"jobdash_bench_history_{os.getpid()}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(args.server)
    params["dbname"] = name
    url = make_conninfo(**params)
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True, options="-c timezone=UTC -c jit=off") as conn:
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
            for label, median, p95 in _bench_queries(conn, args.runs):
                print(f"{label:<48} {median:>10.1f} {p95:>10.1f}")
            median, p95 = _bench_rollup(conn, max(3, args.runs // 4))
            print(f"{'rollup, one minute of 1,000 jobs':<48} {median:>10.1f} {p95:>10.1f}")
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
