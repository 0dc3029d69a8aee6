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

    python bench/bench_bulk_retry.py --scale 500000

instead runs "retry all matching" once over that many failed jobs, as the dashboard does: it
is stopped once half is done (Stop: the batch in progress finishes, nothing more starts), then
started again and runs to the end. Prints jobs/s and how long each batch's transaction (so
each batch's row locks) lasted: median, p95, max.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import psycopg
from bench_common import p95, scratch_database

from jobdash.app.actions.jobs import ActionResult, retry_all_matching
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


class Batches:
    """A progress callback keeping how long each batch took: its transaction, so its locks."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.processed = 0
        self.last = time.perf_counter()

    def __call__(self, result: ActionResult) -> None:
        now = time.perf_counter()
        self.seconds.append(now - self.last)
        self.last, self.processed = now, result.processed


def at_scale(conn: psycopg.Connection, n: int) -> None:
    started = time.perf_counter()
    make_failed(conn, n, shared_locks=False)
    print(f"{n:,} failed jobs made in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    runs = []
    for label, stop_at in (("until Stop at half", n // 2), ("started again, to the end", None)):
        batches = Batches()
        result = retry_all_matching(
            conn, FailedJobFilter(queue="q"), BENCH_ACTOR, batch_size=BATCH,
            should_stop=(lambda b=batches, at=stop_at: b.processed >= at) if stop_at else None,
            progress=batches,
        )  # fmt: skip
        runs.append((label, result, time.perf_counter() - started, batches.seconds))
        started = time.perf_counter()
    left = conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'")
    print(f"retry all matching on {n:,} failed jobs, batches of {BATCH:,}")
    print("| run | jobs | stopped | seconds | jobs/s |")
    print("|---|---:|---|---:|---:|")
    for label, result, seconds, _ in runs:
        print(
            f"| {label} | {result.done_count:,} | {result.stopped} | {seconds:.1f} "
            f"| {result.done_count / seconds:,.0f} |"
        )
    batch_s = sorted(t for *_, times in runs for t in times)
    print(
        f"\n{len(batch_s):,} batches, each one transaction holding only its own rows' locks: "
        f"median {statistics.median(batch_s) * 1000:.0f} ms, p95 {p95(batch_s) * 1000:.0f} ms, "
        f"max {batch_s[-1] * 1000:.0f} ms; failed jobs left: {left.fetchone()[0]:,}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, metavar="N", help="one stopped and resumed run")
    args = parser.parse_args()
    with scratch_database(args.server, DB) as url:
        migrate(url)
        if args.scale:
            with psycopg.connect(url, autocommit=True) as conn:
                at_scale(conn, args.scale)
            return 0
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
