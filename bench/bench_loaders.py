"""Median and p95 of each dashboard loader on seeded databases of 100,000 and 1,000,000 jobs.

    python bench/bench_loaders.py [--server URL] [--runs 30] [--reuse] [--keep]

Creates throwaway databases `jobdash_bench_100000` / `jobdash_bench_1000000` on the server
(default: 127.0.0.1:5432 as postgres), migrates and seeds them with `jobdash.jobs.demo.seed` (same
shape at both sizes: 7 days, 1,000 jobs/min in the last hour), then times each loader. --reuse
keeps databases that already hold the right number of jobs; --keep leaves them for the next run.
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

from jobdash.app import loaders
from jobdash.core.schema import migrate
from jobdash.jobs.demo.seed import seed

SIZES = [100_000, 1_000_000]
LOADERS: dict[str, Callable[[psycopg.Connection], object]] = {
    "load_queue_stats": loaders.load_queue_stats,
    "load_worker_health": loaders.load_worker_health,
    "load_failed_jobs": loaders.load_failed_jobs,
    "load_scheduler": loaders.load_scheduler,
}


def _url(server: str, dbname: str) -> str:
    params = conninfo_to_dict(server)
    params["dbname"] = dbname
    return make_conninfo(**params)


def prepare(server: str, jobs: int, reuse: bool) -> str:
    name = f"jobdash_bench_{jobs}"
    url = _url(server, name)
    with psycopg.connect(server, autocommit=True) as admin:
        exists = admin.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists and reuse:
            with psycopg.connect(url) as conn:
                row = conn.execute("select count(*) from procrastinate_jobs").fetchone()
            if row and row[0] == jobs:
                print(f"reusing {name}", file=sys.stderr)
                return url
        drop = sql.SQL("drop database if exists {} with (force)")
        admin.execute(drop.format(sql.Identifier(name)))
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    migrate(url)
    report = seed(url, jobs)
    print(f"seeded {name}: {report.events} events in {report.seconds:.1f} s", file=sys.stderr)
    return url


def time_loaders(url: str, runs: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in LOADERS}
    with psycopg.connect(url, autocommit=True, options="-c timezone=UTC") as conn:
        for name, loader in LOADERS.items():
            loader(conn)  # warm the cache, as a dashboard refreshing every few seconds does
            for _ in range(runs):
                start = time.perf_counter()
                loader(conn)
                timings[name].append((time.perf_counter() - start) * 1000)
    return timings


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    results = {}
    for jobs in SIZES:
        url = prepare(args.server, jobs, args.reuse)
        results[jobs] = time_loaders(url, args.runs)
    small, big = SIZES
    print(f"| loader | median / p95 @{small:,} (ms) | median / p95 @{big:,} (ms) | ratio |")
    print("|---|---|---|---|")
    for name in LOADERS:
        a, b = results[small][name], results[big][name]
        ma, mb = statistics.median(a), statistics.median(b)
        print(
            f"| {name} | {ma:.1f} / {p95(a):.1f} | {mb:.1f} / {p95(b):.1f} | {mb / ma:.2f}× |"
        )
    if not args.keep:
        with psycopg.connect(args.server, autocommit=True) as admin:
            for jobs in SIZES:
                admin.execute(
                    sql.SQL("drop database if exists {} with (force)").format(
                        sql.Identifier(f"jobdash_bench_{jobs}")
                    )
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
