"""The Jobs page at 10,000,000 jobs: state counts, and the first page and count of each filter.

    python bench/bench_jobs.py [--server URL] [--jobs 10000000] [--runs 20] [--scan 100000]
                               [--reuse] [--keep]

Uses `jobdash_bench_<N>` on the server (default 127.0.0.1:5432 as postgres), the database
bench_loaders.py leaves with --keep (reference data, with its backlog of ready, doing and
stalled jobs), or creates it: migrates and seeds it with `jobdash.jobs.demo.seed` (7 days,
1,000 jobs/min in the last hour; 10 M jobs take 15-20 min). Then makes a few rarities the
seed has none of: 50 old jobs in a queue "rare", a lock on old and open jobs. --reuse keeps a
database that already holds the jobs; --keep leaves it for the next run. Prints a markdown
table: median and p95 of each query (warm, as a dashboard refreshing every few seconds keeps
it), what it found, how far a bounded search went, and which indexes the page's plan used.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from bench_common import create_database, database_url, drop_database, p95

from jobdash.app.read import jobs
from jobdash.app.read.job_filter import JobFilter
from jobdash.core.schema import migrate
from jobdash.jobs.demo.seed import seed

RARITIES = """
UPDATE procrastinate_jobs SET queue_name = 'rare'
WHERE id IN (SELECT id FROM procrastinate_jobs WHERE id BETWEEN 1000000 AND 1000049);
UPDATE procrastinate_jobs SET lock = 'bench-lock'
WHERE id IN (SELECT id FROM procrastinate_jobs WHERE id BETWEEN 2000000 AND 2000009)
   OR id = (SELECT max(id) FROM procrastinate_jobs WHERE status = 'todo');
ANALYZE procrastinate_jobs;
"""


def prepare(server: str, count: int, reuse: bool) -> str:
    name = f"jobdash_bench_{count}"
    url = database_url(server, name)
    with psycopg.connect(server, autocommit=True) as admin:
        exists = admin.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists and reuse:
            migrate(url)
            with psycopg.connect(url) as conn:
                row = conn.execute("select max(id) from procrastinate_jobs").fetchone()
            if row and row[0] and row[0] >= count:
                print(f"reusing {name}", file=sys.stderr)
                _rarities(url)
                return url
    create_database(server, name)
    migrate(url)
    report = seed(url, count)
    print(f"seeded {name}: {report.events:,} events in {report.seconds:.0f} s", file=sys.stderr)
    _rarities(url)
    return url


def _rarities(url: str) -> None:
    """Idempotent: the same rows each time."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(RARITIES)


def filters(conn: psycopg.Connection) -> dict[str, JobFilter]:
    now = datetime.now(UTC)
    sample = tuple(
        r[0] for r in conn.execute("select id from procrastinate_jobs where id % 997 = 0 limit 10")
    )
    return {
        "no filter": JobFilter(),
        "state ready": JobFilter(state="ready"),
        "state scheduled": JobFilter(state="scheduled"),
        "state doing": JobFilter(state="doing"),
        "state failed": JobFilter(state="failed"),
        "state succeeded": JobFilter(state="succeeded"),
        "state cancelled": JobFilter(state="cancelled"),
        "state aborted": JobFilter(state="aborted"),
        "queue (big)": JobFilter(queue="emails"),
        "queue (50 old jobs)": JobFilter(queue="rare"),
        "task": JobFilter(task="app.tasks.build_report"),
        "task + state failed": JobFilter(task="app.tasks.build_report", state="failed"),
        "10 ids": JobFilter(ids=sample),
        "lock": JobFilter(lock="bench-lock"),
        "lock + state ready": JobFilter(lock="bench-lock", state="ready"),
        "args {customer_id: 42}": JobFilter(args='{"customer_id":42}'),
        "args + state failed": JobFilter(args='{"customer_id":42}', state="failed"),
        "finished in the last hour": JobFilter(finished_since=now - timedelta(hours=1)),
        "deferred 1 h, a day ago": JobFilter(
            deferred_since=now - timedelta(hours=25), deferred_until=now - timedelta(hours=24)
        ),
    }


def timed(call: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    result = call()  # warm
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples, result


def indexes_used(conn: psycopg.Connection, job_filter: JobFilter, scan: int) -> str:
    query, params = jobs.page_query(conn, job_filter, 50, None, scan)
    (doc,) = conn.execute("EXPLAIN (FORMAT JSON) " + query, params).fetchone()
    names: list[str] = []

    def walk(node: dict) -> None:
        if node.get("Relation Name") == "procrastinate_jobs":
            names.append(node.get("Index Name") or node["Node Type"])
        for child in node.get("Plans", []):
            walk(child)

    walk(doc[0]["Plan"])
    return ", ".join(dict.fromkeys(names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--jobs", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--scan", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = prepare(args.server, args.jobs, args.reuse)
    with psycopg.connect(url, autocommit=True, options="-c timezone=UTC") as conn:
        (total,) = conn.execute("select count(*) from procrastinate_jobs").fetchone()
        print(f"{total:,} jobs; {args.runs} runs each; search window {args.scan:,}\n")
        counts_ms, counts = timed(lambda: jobs.load_state_counts(conn), args.runs)
        print("| query | median / p95 (ms) | result |")
        print("|---|---|---|")
        shown = ", ".join(f"{s} {counts.text(s)}" for s in counts.counts)
        timing = f"{statistics.median(counts_ms):.1f} / {p95(counts_ms):.1f}"
        print(f"| state counts | {timing} | {shown} |")
        print()
        print(
            "| filter | first page median / p95 (ms) | rows | searched | count median (ms) "
            "| count | indexes of the page's plan |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, job_filter in filters(conn).items():
            page_ms, page = timed(
                lambda f=job_filter: jobs.load_jobs_page(conn, f, 50, None, args.scan), args.runs
            )
            count_ms, count = timed(
                lambda f=job_filter: jobs.count_jobs(conn, f, args.scan), max(3, args.runs // 4)
            )
            searched = page.searched
            went = (
                "—" if searched is None
                else f"all {searched.count:,} {searched.walks}" if searched.complete
                else f"newest {searched.count:,} {searched.walks}"
            )  # fmt: skip
            print(
                f"| {name} | {statistics.median(page_ms):.1f} / {p95(page_ms):.1f} "
                f"| {len(page.rows)} | {went} | {statistics.median(count_ms):.1f} "
                f"| {count.text()} | {indexes_used(conn, job_filter, args.scan)} |"
            )
    if not args.keep:
        drop_database(args.server, f"jobdash_bench_{args.jobs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
