"""Database time of a dashboard snapshot (its four panels' loaders), side by side at each size.

    python bench/bench_loaders.py [--sizes 100000,1000000,10000000] [--server URL] [--runs 30]
                                  [--ready 0.03] [--doing 0.01] [--reuse] [--keep]

Reference data, as a busy system has during a burst: each database `jobdash_bench_<jobs>` on
the server (default 127.0.0.1:5432 as postgres) is migrated and seeded with
`jobdash.jobs.demo.seed` (7 days of history, 1,000 jobs/min in the last hour), then a backlog
that grows with it is added: `--ready` of the jobs waiting (todo, deferred over the last
half hour) and `--doing` running on the seed's workers (a third of them on the worker silent
for an hour: stalled). Each run times the four loaders one after another, as one refresh of
the dashboard does, on one warm connection, after the minute rollup the worker runs; the
snapshot row is the sum per run. --reuse keeps
databases that already hold the right number of jobs (migrating them to the current schema);
--keep leaves them for the next run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import psycopg
from bench_common import create_database, database_url, drop_database, p95

from jobdash.app.read.dashboard import load_failed_jobs, load_queue_stats, load_worker_health
from jobdash.app.read.schedule import load_scheduler
from jobdash.core.schema import migrate
from jobdash.jobs.demo.seed import seed
from jobdash.jobs.maintenance.rollup import run_rollup

SIZES = [100_000, 1_000_000]
SNAPSHOT = "snapshot (all four)"

# The backlog: ready jobs deferred over the last 30 minutes, doing jobs started in the last
# 10, on the seed's workers (ids passed in); Procrastinate's triggers off as in the seed.
BACKLOG = """
insert into procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args, status,
                                scheduled_at, attempts, worker_id)
select q.queue_name, q.task_name, null, null, '{}'::jsonb,
       case when g <= %(ready)s::int then 'todo' else 'doing' end::procrastinate_job_status,
       null, case when g <= %(ready)s::int then 0 else 1 end,
       case when g > %(ready)s::int
            then (%(workers)s::bigint[])[1 + g %% cardinality(%(workers)s)] end
from generate_series(1, %(ready)s::int + %(doing)s::int) g
cross join lateral (select queue_name, task_name from (values
    ('default', 'app.tasks.sync_inventory'), ('emails', 'app.tasks.send_welcome_email'),
    ('webhooks', 'app.tasks.deliver_webhook'), ('billing', 'app.tasks.charge_invoice'))
    t(queue_name, task_name) offset g %% 4 limit 1) q
"""
BACKLOG_EVENTS = """
insert into procrastinate_events (job_id, type, at)
select id, 'deferred'::procrastinate_job_event_type, now() - random() * interval '30 minutes'
from procrastinate_jobs where id > %(base)s
union all
select id, 'started'::procrastinate_job_event_type, now() - random() * interval '10 minutes'
from procrastinate_jobs where id > %(base)s and status = 'doing'
"""
LOADERS: dict[str, Callable[[psycopg.Connection], object]] = {
    "load_queue_stats": load_queue_stats,
    "load_worker_health": load_worker_health,
    "load_failed_jobs": load_failed_jobs,
    "load_scheduler": load_scheduler,
}


def prepare(server: str, jobs: int, reuse: bool, backlog: int) -> str:
    name = f"jobdash_bench_{jobs}"
    url = database_url(server, name)
    with psycopg.connect(server, autocommit=True) as admin:
        exists = admin.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists and reuse:
            with psycopg.connect(url) as conn:
                row = conn.execute("select count(*) from procrastinate_jobs").fetchone()
            if row and row[0] in (jobs, jobs + backlog):
                print(f"reusing {name}", file=sys.stderr)
                migrate(url)
                return url
    create_database(server, name)
    migrate(url)
    report = seed(url, jobs)
    print(f"seeded {name}: {report.events} events in {report.seconds:.1f} s", file=sys.stderr)
    with psycopg.connect(url, autocommit=True) as conn:
        run_rollup(conn, backfill=True)  # the history a worker's rollup would have built
    return url


def add_backlog(url: str, jobs: int, ready: float, doing: float) -> tuple[int, int]:
    """Adds the reference backlog unless it is there; (ready, doing) jobs added."""
    counts = {"ready": round(jobs * ready), "doing": round(jobs * doing)}
    with psycopg.connect(url) as conn:
        marker = "jobdash_bench_backlog"
        done = conn.execute("select to_regclass(%s)", (marker,)).fetchone()
        if done and done[0]:
            return counts["ready"], counts["doing"]
        conn.execute("lock table procrastinate_jobs in access exclusive mode")
        conn.execute("alter table procrastinate_jobs disable trigger user")
        base = conn.execute("select coalesce(max(id), 0) from procrastinate_jobs").fetchone()[0]
        workers = [
            row[0] for row in conn.execute("select id from procrastinate_workers order by id")
        ]
        stalled = workers[2:3] or workers  # the seed's third worker is silent for an hour
        conn.execute(BACKLOG, {**counts, "workers": workers + stalled})
        conn.execute(BACKLOG_EVENTS, {"base": base})
        conn.execute("alter table procrastinate_jobs enable trigger user")
        conn.execute(f"create table {marker} ()")  # noqa: S608 - fixed name
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("procrastinate_jobs", "procrastinate_events"):
            conn.execute(f"vacuum (analyze) {table}")  # noqa: S608 - fixed names
    return counts["ready"], counts["doing"]


# Whether the rollup's history and marks cover every event: the dashboard then reads raw
# events only past the last mark (as a minute after a burst, not the backlog's back-dated
# events the last mark was taken before).
COVERED = """
select coalesce((select max(m.last_event_id) from jobdash_rollup_marks m
                  where m.taken_at <= (select last_run_at from jobdash_rollup_state)), 0)
       >= (select coalesce(max(id), 0) from procrastinate_events)
"""


def roll_up(url: str) -> None:
    """The minute rollup as the worker runs it, once a minute until its marks cover the
    backlog's events (at most three runs)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(3):
            run_rollup(conn)
            row = conn.execute(COVERED).fetchone()
            if row and row[0]:
                return
            time.sleep(61 - time.time() % 60)  # the next minute's run


def time_loaders(url: str, runs: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in [*LOADERS, SNAPSHOT]}
    with psycopg.connect(url, autocommit=True, options="-c timezone=UTC") as conn:
        for loader in LOADERS.values():
            loader(conn)  # warm the cache, as a dashboard refreshing every few seconds does
        for _ in range(runs):
            total = 0.0
            for name, loader in LOADERS.items():
                start = time.perf_counter()
                loader(conn)
                elapsed = (time.perf_counter() - start) * 1000
                timings[name].append(elapsed)
                total += elapsed
            timings[SNAPSHOT].append(total)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--ready", type=float, default=0.03, help="share of jobs waiting")
    parser.add_argument("--doing", type=float, default=0.01, help="share of jobs running")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    results = {}
    for jobs in sizes:
        backlog = round(jobs * args.ready) + round(jobs * args.doing)
        url = prepare(args.server, jobs, args.reuse, backlog)
        ready, doing = add_backlog(url, jobs, args.ready, args.doing)
        roll_up(url)
        print(f"{jobs:,} jobs: backlog {ready:,} ready, {doing:,} doing", file=sys.stderr)
        results[jobs] = time_loaders(url, args.runs)
    first, last = sizes[0], sizes[-1]
    head = " | ".join(f"median / p95 @{jobs:,} (ms)" for jobs in sizes)
    print(f"| loader | {head} | ratio {last:,} / {first:,} |")
    print("|---|" + "---|" * len(sizes) + "---|")
    for name in [*LOADERS, SNAPSHOT]:
        cells = " | ".join(
            f"{statistics.median(results[jobs][name]):.1f} / {p95(results[jobs][name]):.1f}"
            for jobs in sizes
        )
        ratio = statistics.median(results[last][name]) / statistics.median(results[first][name])
        print(f"| {name} | {cells} | {ratio:.2f}× |")
    if not args.keep:
        for jobs in sizes:
            drop_database(args.server, f"jobdash_bench_{jobs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
