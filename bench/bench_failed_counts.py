"""Write cost of the failed-count ledger triggers (migrations/002_dashboard_indexes.sql).

    python bench/bench_failed_counts.py [--server URL] [--jobs 2000]

On a throwaway database: times single-row status updates (todo → doing, the move every fetched
job makes; doing → failed) and one 1,000-row bulk update failed → todo, with the ledger
triggers enabled and then disabled, and prints the mean cost per statement / per row.
"""

from __future__ import annotations

import argparse
import sys
import time

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jobdash.core.schema import migrate

DB = "jobdash_bench_failed_counts"
TRIGGERS = ["jobdash_count_failed_insert", "jobdash_count_failed_update"]


def _each(conn: psycopg.Connection, ids: list[int], status: str) -> float:
    """Mean ms per single-row UPDATE (each its own transaction, as a worker does)."""
    start = time.perf_counter()
    for job_id in ids:
        conn.execute("update procrastinate_jobs set status = %s where id = %s", (status, job_id))
    return (time.perf_counter() - start) * 1000 / len(ids)


def _round(conn: psycopg.Connection, jobs: int) -> dict[str, float]:
    conn.execute("truncate procrastinate_jobs cascade")
    ids = [
        row[0]
        for row in conn.execute(
            "insert into procrastinate_jobs (queue_name, task_name, args) "
            "select 'q' || g %% 5, 't', '{}' from generate_series(1, %s) g returning id",
            (jobs,),
        )
    ]
    conn.execute("vacuum analyze procrastinate_jobs")
    result = {
        "todo → doing (ms/statement)": _each(conn, ids, "doing"),
        "doing → failed (ms/statement)": _each(conn, ids, "failed"),
    }
    start = time.perf_counter()
    conn.execute("update procrastinate_jobs set status = 'todo' where id = any(%s)", (ids[:1000],))
    result["failed → todo, 1,000 rows in one statement (ms)"] = (time.perf_counter() - start) * 1000
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--jobs", type=int, default=2000)
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
        with psycopg.connect(url, autocommit=True) as conn:
            _round(conn, args.jobs)  # warm-up
            on = _round(conn, args.jobs)
            for trigger in TRIGGERS:
                conn.execute(
                    sql.SQL("alter table procrastinate_jobs disable trigger {}").format(
                        sql.Identifier(trigger)
                    )
                )
            off = _round(conn, args.jobs)
        print("| statement | ledger triggers on | off | added |")
        print("|---|---|---|---|")
        for name in on:
            print(f"| {name} | {on[name]:.3f} | {off[name]:.3f} | {on[name] - off[name]:+.3f} |")
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(drop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
