"""Rate of bulk retry ("retry all matching"), through Procrastinate's procrastinate_retry_job_v2.

    python bench/bench_bulk_retry.py [--server URL] [--jobs 50000] [--rounds 3]

On a throwaway migrated database, each round makes `--jobs` failed jobs (todo → doing →
failed, Procrastinate's triggers on) and times, in 1,000-job batches:
- `retry_all_matching`, the whole action (ids batch, row locks, queueing-lock pre-check,
  Procrastinate's function, skip reasons, audit row), without queueing locks and with 30 % of
  the jobs sharing 2,000 locks;
- the change alone, per batch: Procrastinate's function once per job in one statement, against
  the set-based UPDATE the action used before (same status/attempts change, no function call).
Prints jobs/s (median and slowest round) and the ratio to the set-based UPDATE.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jobdash.app.actions.jobs import retry_all_matching
from jobdash.app.actions.retry import RETRY_WITH_PROCRASTINATE
from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.core.auth.identity import Identity, Role
from jobdash.core.schema import migrate

DB = "jobdash_bench_bulk_retry"
BATCH = 1000

MAKE_FAILED = """
INSERT INTO procrastinate_jobs (queue_name, task_name, args)
SELECT 'q', 't', jsonb_build_object('n', g) FROM generate_series(1, %(n)s) g
RETURNING id
"""

SET_BASED_UPDATE = """
UPDATE procrastinate_jobs
SET status = 'todo', attempts = attempts + 1, scheduled_at = NULL
WHERE id = ANY(%(ids)s) AND status = 'failed'
"""


# The actions check the actor's role: the benchmark acts as an operator.
BENCH_ACTOR = Identity("bench", Role.OPERATOR, "cli")


def make_failed(conn: psycopg.Connection, n: int, shared_locks: bool) -> list[int]:
    conn.execute("TRUNCATE procrastinate_jobs, jobdash_audit_log CASCADE")
    with conn.transaction():
        ids = [row[0] for row in conn.execute(MAKE_FAILED, {"n": n})]
        conn.execute("UPDATE procrastinate_jobs SET status = 'doing'")
        if shared_locks:
            conn.execute(
                "UPDATE procrastinate_jobs SET queueing_lock = 'lock-' || (id %% 2000) "
                "WHERE id %% 10 < 3",
                {},
            )
    conn.execute("UPDATE procrastinate_jobs SET status = 'failed', attempts = 1")
    conn.execute("VACUUM ANALYZE procrastinate_jobs")
    conn.execute("VACUUM ANALYZE procrastinate_events")
    return ids


def time_action(conn: psycopg.Connection) -> tuple[float, int]:
    start = time.perf_counter()
    result = retry_all_matching(conn, FailedJobFilter(queue="q"), BENCH_ACTOR, batch_size=BATCH)
    elapsed = time.perf_counter() - start
    assert result.processed == result.total, result.summary()
    return elapsed, result.processed


def time_statement(conn: psycopg.Connection, ids: list[int], query: str) -> tuple[float, int]:
    params = {"retry_at": None, "priority": None, "queue": None}
    start = time.perf_counter()
    for i in range(0, len(ids), BATCH):
        with conn.transaction():
            conn.execute(query, {**params, "ids": ids[i : i + BATCH]})
    return time.perf_counter() - start, len(ids)


def action_without_locks(conn: psycopg.Connection, n: int) -> tuple[float, int]:
    make_failed(conn, n, shared_locks=False)
    return time_action(conn)


def action_with_locks(conn: psycopg.Connection, n: int) -> tuple[float, int]:
    make_failed(conn, n, shared_locks=True)
    return time_action(conn)


def function_per_job(conn: psycopg.Connection, n: int) -> tuple[float, int]:
    return time_statement(conn, make_failed(conn, n, False), RETRY_WITH_PROCRASTINATE)


def set_based_update(conn: psycopg.Connection, n: int) -> tuple[float, int]:
    return time_statement(conn, make_failed(conn, n, False), SET_BASED_UPDATE)


BASELINE = "change only: set-based UPDATE (before)"
VARIANTS: dict[str, Callable[[psycopg.Connection, int], tuple[float, int]]] = {
    "retry_all_matching, no queueing locks": action_without_locks,
    "retry_all_matching, 30 % sharing 2,000 locks": action_with_locks,
    "change only: procrastinate_retry_job_v2 per job": function_per_job,
    BASELINE: set_based_update,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    params = conninfo_to_dict(args.server)
    params["dbname"] = DB
    url = make_conninfo(**params)
    drop = sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(DB))
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(drop)
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(DB)))
    try:
        migrate(url)
        rates: dict[str, list[float]] = {}
        with psycopg.connect(url, autocommit=True) as conn:
            # Rounds interleave the variants, so a busy moment of the machine hits all alike.
            for _ in range(args.rounds):
                for name, run in VARIANTS.items():
                    elapsed, jobs = run(conn, args.jobs)
                    rates.setdefault(name, []).append(jobs / elapsed)
        baseline = statistics.median(rates[BASELINE])
        print(f"{args.jobs:,} failed jobs, batches of {BATCH:,}, {args.rounds} rounds")
        print("| variant | jobs/s (median) | slowest round | × set-based UPDATE |")
        print("|---|---|---|---|")
        for name, values in rates.items():
            median = statistics.median(values)
            print(f"| {name} | {median:,.0f} | {min(values):,.0f} | {median / baseline:.2f} |")
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(drop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
