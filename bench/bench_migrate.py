"""What the first `jobdash migrate` costs a live queue: the longest wait of any defer and fetch.

A database with Procrastinate's schema and N jobs (default 1,000,000; built with `jobdash
seed`'s set-based SQL, then `jobdash uninstall`, so Jobdash's own objects are gone), plus a
backlog of todo jobs. A worker loop (procrastinate_fetch_job_v2, then procrastinate_finish_job_v1)
drains the backlog and a deferrer adds RATE jobs/s (procrastinate_defer_jobs_v1), each on its
own connection, timing every call client-side; then `jobdash migrate` runs as a subprocess.
Prints the waits before, during and after the migrate (median, p95, max, counts), the migrate's
duration and its slowest steps. Target: no defer or fetch waits more than 1 s during it.

    python bench/bench_migrate.py [--jobs 1000000] [--rate 50] [--server URL] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import psycopg
from bench_common import create_database, drop_database, p95

from jobdash.core.schema import migrate
from jobdash.core.schema.plan import plan
from jobdash.core.schema.uninstall import uninstall
from jobdash.jobs.demo.seed import seed

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE = "jobdash_bench_migrate"
TARGET_S = 1.0


@dataclass
class Calls:
    """(start time, seconds) of every call, one list per kind."""

    defer: list[tuple[float, float]] = field(default_factory=list)
    fetch: list[tuple[float, float]] = field(default_factory=list)
    jobs_run: int = 0
    errors: list[str] = field(default_factory=list)


def build(server: str, jobs: int, backlog: int) -> str:
    url = create_database(server, DATABASE)
    started = time.monotonic()
    migrate(url)
    report = seed(url, jobs)
    uninstall(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "select procrastinate_defer_jobs_v1(array(select row('default', 'bench.noop', 0,"
            " null, null, '{}'::jsonb, null)::procrastinate_job_to_defer_v1"
            " from generate_series(1, %s)))",
            (backlog,),
        )
        conn.execute("vacuum analyze procrastinate_jobs")
        conn.execute("vacuum analyze procrastinate_events")
        size = conn.execute(
            "select pg_size_pretty(pg_relation_size('procrastinate_jobs')),"
            " pg_size_pretty(pg_relation_size('procrastinate_events')),"
            " (select count(*) from procrastinate_events)"
        ).fetchone()
    print(
        f"built {report.jobs:,} jobs ({report.events:,} events) + {backlog:,} todo in "
        f"{time.monotonic() - started:.0f} s; procrastinate_jobs {size[0]}, "
        f"procrastinate_events {size[1]} ({size[2]:,} rows); no jobdash_* object left",
        flush=True,
    )
    return url


def worker(url: str, calls: Calls, stop: threading.Event) -> None:
    with psycopg.connect(url, autocommit=True, application_name="bench-worker") as conn:
        worker_id = conn.execute(
            "select worker_id from procrastinate_register_worker_v1()"
        ).fetchone()[0]
        while not stop.is_set():
            started = time.monotonic()
            try:
                row = conn.execute(
                    "select id from procrastinate_fetch_job_v2(null, %s)", (worker_id,)
                ).fetchone()
                job_id = row[0] if row else None
                if job_id is not None:
                    conn.execute(
                        "select procrastinate_finish_job_v1(%s, 'succeeded', false)", (job_id,)
                    )
                    calls.jobs_run += 1
            except psycopg.Error as exc:
                calls.errors.append(f"fetch: {exc}")
                job_id = None
            calls.fetch.append((started, time.monotonic() - started))
            if job_id is None:
                time.sleep(0.05)  # an idle worker polls


def deferrer(url: str, rate: float, calls: Calls, stop: threading.Event) -> None:
    with psycopg.connect(url, autocommit=True, application_name="bench-deferrer") as conn:
        next_at = time.monotonic()
        while not stop.is_set():
            started = time.monotonic()
            try:
                conn.execute(
                    "select procrastinate_defer_jobs_v1(array[row('default', 'bench.noop', 0,"
                    " null, null, '{}'::jsonb, null)::procrastinate_job_to_defer_v1])"
                )
            except psycopg.Error as exc:
                calls.errors.append(f"defer: {exc}")
            calls.defer.append((started, time.monotonic() - started))
            # Fixed schedule: a slow call is not an excuse to defer fewer jobs.
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))


def run_migrate(url: str) -> tuple[float, list[tuple[float, str]]]:
    """Run `jobdash migrate`; return its duration and its output lines with the time each
    was printed (a step's "done in" line ends the step)."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "jobdash", "migrate", "--database-url", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert process.stdout is not None
    lines = [(time.monotonic(), line.rstrip("\n")) for line in process.stdout]
    if process.wait() != 0:
        error = process.stderr.read().strip() if process.stderr else ""
        raise SystemExit(f"migrate failed: {error}")
    return time.monotonic() - started, lines


def steps_of(lines: list[tuple[float, str]]) -> list[tuple[float, float, str]]:
    """(start, seconds, label) of each step, from its "done in" line."""
    steps = []
    for at, line in lines:
        match = re.match(r"(.*): done in ([\d.]+) s$", line)
        if match:
            steps.append((at - float(match.group(2)), float(match.group(2)), match.group(1)))
    return steps


def running_at(steps: list[tuple[float, float, str]], start: float, seconds: float) -> str:
    overlapping = [label for s, d, label in steps if s < start + seconds and s + d > start]
    return overlapping[0] if overlapping else "between steps"


def stats(waits: list[float]) -> str:
    if not waits:
        return f"{'-':>9} {'-':>9} {'-':>9} {0:>7}"
    ordered = sorted(waits)
    return (
        f"{statistics.median(ordered) * 1000:>7.1f}ms {p95(ordered) * 1000:>7.1f}ms "
        f"{ordered[-1] * 1000:>7.1f}ms {len(ordered):>7,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--backlog", type=int, default=20_000, help="todo jobs to drain")
    parser.add_argument("--rate", type=float, default=50, help="defers per second")
    parser.add_argument("--settle", type=float, default=10, help="seconds before and after")
    parser.add_argument("--server", default=SERVER)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    url = build(args.server, args.jobs, args.backlog)
    with psycopg.connect(url, autocommit=True) as conn:
        estimates = {
            p.step.label: p.estimate.split(" (")[0].split(" once")[0]
            for _, planned in plan(conn, 200)
            for p in planned
        }
    calls, stop = Calls(), threading.Event()
    threads = [
        threading.Thread(target=worker, args=(url, calls, stop)),
        threading.Thread(target=deferrer, args=(url, args.rate, calls, stop)),
    ]
    for t in threads:
        t.start()
    time.sleep(args.settle)
    migrate_start = time.monotonic()
    elapsed, lines = run_migrate(url)
    steps = steps_of(lines)
    migrate_end = migrate_start + elapsed
    time.sleep(args.settle)
    stop.set()
    for t in threads:
        t.join()

    def phase(kind: list[tuple[float, float]], lo: float, hi: float) -> list[float]:
        # A call belongs to the migrate when it overlaps it at all.
        return [d for s, d in kind if s < hi and s + d > lo]

    print(
        f"\njobdash migrate on {args.jobs:,} jobs took {elapsed:.1f} s "
        f"(worker ran {calls.jobs_run:,} jobs, deferrer {args.rate:.0f}/s)\n"
    )
    print(f"{'phase':<16} {'call':<7} {'median':>9} {'p95':>9} {'max':>9} {'count':>7}")
    t0 = migrate_start - args.settle
    for name, lo, hi in (
        ("before", t0, migrate_start),
        ("during migrate", migrate_start, migrate_end),
        ("after", migrate_end, migrate_end + args.settle + 60),
    ):
        for kind, label in ((calls.defer, "defer"), (calls.fetch, "fetch")):
            print(f"{name:<16} {label:<7} {stats(phase(kind, lo, hi))}")
    worst = max(
        phase(calls.defer, migrate_start, migrate_end)
        + phase(calls.fetch, migrate_start, migrate_end),
        default=0,
    )
    verdict = "met" if worst <= TARGET_S and not calls.errors else "MISSED"
    print(
        f"\nlongest wait during migrate: {worst * 1000:.0f} ms (target <= "
        f"{TARGET_S * 1000:.0f} ms: {verdict}); errors: {len(calls.errors)}"
    )
    for error in calls.errors[:5]:
        print(f"  {error}")
    print("\nlongest waits during migrate, and the step running then:")
    during = [("defer", s, d) for s, d in calls.defer if migrate_start <= s < migrate_end] + [
        ("fetch", s, d) for s, d in calls.fetch if migrate_start <= s < migrate_end
    ]
    for kind, start, seconds in sorted(during, key=lambda c: -c[2])[:6]:
        print(f"  {seconds * 1000:>6.0f} ms  {kind}  {running_at(steps, start, seconds)}")
    print(f"\nslowest steps ({len(steps)} in all), with what `migrate --plan` estimated:")
    for _start, seconds, label in sorted(steps, key=lambda st: -st[1])[:8]:
        print(f"  {seconds:>7.2f} s  (plan: {estimates.get(label, '?'):>9})  {label}")
    retries = [line for _, line in lines if "retry" in line]
    print(f"lock retries: {len(retries)}")
    for line in retries[:5]:
        print(f"  {line}")
    if not args.keep:
        drop_database(args.server, DATABASE)


if __name__ == "__main__":
    main()
