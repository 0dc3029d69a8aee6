"""Median and p95 of the failed-jobs readers on the databases bench_loaders.py leaves (--keep).

    python bench/bench_failed_list.py [--server URL] [--sizes 100000,1000000] [--runs 20]

Times, on one warm connection per database `jobdash_bench_<jobs>`: the failed-jobs page (one
page with the count matching the filter: none, a queue, a task, an error text), a keyset walk
to its 20th page, one batch of 1,000 ids of an "all matching" bulk action, the dashboard's
failed panel, and the Jobs page's state:failed page and count. Run it with the code whose
readers you measure on PYTHONPATH (the databases are migrated by bench_loaders.py --reuse).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import psycopg
from bench_common import database_url, p95

from jobdash.app.read import dashboard, failed_jobs, jobs
from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.app.read.job_filter import JobFilter


def _pages(conn: psycopg.Connection, count: int) -> object:
    cursor = None
    for _ in range(count):
        cursor = failed_jobs.list_failed_jobs(conn, FailedJobFilter(), 50, cursor).next_cursor
        if cursor is None:
            break
    return cursor


def _batch(conn: psycopg.Connection) -> object:
    top = failed_jobs.max_failed_id(conn)
    return failed_jobs.failed_ids_batch(conn, FailedJobFilter(), 0, top, 1000)


READERS: dict[str, Callable[[psycopg.Connection], object]] = {
    "failed page": lambda c: failed_jobs.load_failed_page(c, FailedJobFilter()),
    "failed page, queue": lambda c: failed_jobs.load_failed_page(
        c, FailedJobFilter(queue="billing")
    ),
    "failed page, task": lambda c: failed_jobs.load_failed_page(
        c, FailedJobFilter(task="app.tasks.charge_invoice")
    ),
    "failed page, error text": lambda c: failed_jobs.load_failed_page(
        c, FailedJobFilter(error_contains="reset by peer")
    ),
    # Matches nothing: the whole search window is read (JOBDASH_SEARCH_SCAN_JOBS).
    "failed page, error text, no match": lambda c: failed_jobs.load_failed_page(
        c, FailedJobFilter(error_contains="no such error text")
    ),
    "failed page, exception type": lambda c: failed_jobs.load_failed_page(
        c, FailedJobFilter(exception_type="KeyError")
    ),
    "failed page, task + error text": lambda c: failed_jobs.load_failed_page(
        c, FailedJobFilter(task="app.tasks.charge_invoice", error_contains="reset by peer")
    ),
    "failed pages 1-20": lambda c: _pages(c, 20),
    "bulk batch of 1,000 ids": _batch,
    "dashboard failed panel": dashboard.load_failed_jobs,
    "jobs page state:failed": lambda c: jobs.load_jobs_page(c, JobFilter(state="failed")),
    "jobs count state:failed": lambda c: jobs.count_jobs(c, JobFilter(state="failed")),
    "jobs page task + state:failed": lambda c: jobs.load_jobs_page(
        c, JobFilter(state="failed", task="app.tasks.charge_invoice")
    ),
    "jobs count task + state:failed": lambda c: jobs.count_jobs(
        c, JobFilter(state="failed", task="app.tasks.charge_invoice")
    ),
}


def time_readers(url: str, runs: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in READERS}
    with psycopg.connect(url, autocommit=True, options="-c timezone=UTC") as conn:
        for name, reader in READERS.items():
            reader(conn)  # warm, as a page refreshing every few seconds is
            for _ in range(runs):
                start = time.perf_counter()
                reader(conn)
                timings[name].append((time.perf_counter() - start) * 1000)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    results = {
        n: time_readers(database_url(args.server, f"jobdash_bench_{n}"), args.runs) for n in sizes
    }
    head = " | ".join(f"median / p95 @{n:,} (ms)" for n in sizes)
    print(f"| reader | {head} |")
    print("|---|" + "---|" * len(sizes))
    for name in READERS:
        cells = " | ".join(
            f"{statistics.median(results[n][name]):.1f} / {p95(results[n][name]):.1f}"
            for n in sizes
        )
        print(f"| {name} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
