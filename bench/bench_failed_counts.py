"""Write cost of the failed ledger's and list's trigger (migrations/006 and 008).

    python bench/bench_failed_counts.py [--server URL] [--jobs 2000] [--rounds 5]

On a throwaway database: times single-row status updates (todo → doing, the move every fetched
job makes, which the triggers' WHEN clauses filter out; doing → failed and failed → todo, which
run the trigger function) and one bulk update failed → todo, each single-row update
its own transaction as a worker's finish is. Three variants, interleaved round by round (the
machine is shared): the trigger function as shipped (its writes in a subtransaction, its own
lock_timeout), the same body without the subtransaction and the SET clause, and the triggers
disabled. Prints the median per statement / per bulk update over the rounds, and the
triggers' own time per statement as EXPLAIN ANALYZE reports it (no client round trip).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from importlib.resources import files

import psycopg
from bench_common import scratch_database
from psycopg import sql

from jobdash.core.schema import migrate
from jobdash.core.schema.sqltext import statements

DB = "jobdash_bench_failed_counts"
TRIGGERS = ["jobdash_count_failed_insert", "jobdash_count_failed_update"]
VARIANTS = ["as shipped (subtransaction)", "without subtransaction", "triggers off"]


def shipped_function() -> str:
    text = (files("jobdash.migrations") / "008_failed_jobs.sql").read_text()
    return next(
        s.text
        for s in statements(text)
        if "FUNCTION jobdash_count_failed_row()" in s.text and "CREATE" in s.text
    )


def without_subtransaction(shipped: str) -> str:
    """The same writes, straight in the trigger's body: no SET clause, no EXCEPTION block."""
    head, rest = shipped.split("BEGIN\n    BEGIN\n", 1)
    body, _ = rest.split("    EXCEPTION WHEN OTHERS THEN", 1)
    head = head.replace("\n    SET lock_timeout = '500ms'", "")
    return head + "BEGIN\n" + body + "    RETURN NULL;\nEND;\n$$"


def _each(conn: psycopg.Connection, ids: list[int], status: str) -> float:
    """Mean ms per single-row UPDATE (each its own transaction, as a worker does)."""
    start = time.perf_counter()
    for job_id in ids:
        conn.execute("update procrastinate_jobs set status = %s where id = %s", (status, job_id))
    return (time.perf_counter() - start) * 1000 / len(ids)


def _trigger_us(conn: psycopg.Connection, ids: list[int], status: str) -> float:
    """Mean µs that Jobdash's triggers took per single-row UPDATE, as PostgreSQL times them
    (EXPLAIN ANALYZE's trigger times: no client round trip in it)."""
    total = 0.0
    for job_id in ids:
        row = conn.execute(
            "explain (analyze, format json) update procrastinate_jobs set status = %s"
            " where id = %s",
            (status, job_id),
        ).fetchone()
        assert row is not None
        for trigger in row[0][0].get("Triggers", []):
            if trigger["Trigger Name"].startswith("jobdash_"):
                total += trigger["Time"] * 1000
    return total / len(ids)


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
    half = ids[: jobs // 2]
    result = {
        "todo → doing (ms/statement)": _each(conn, ids, "doing"),
        "doing → failed (ms/statement)": _each(conn, ids, "failed"),
        "failed → todo (ms/statement)": _each(conn, half, "todo"),
    }
    rest = ids[jobs // 2 :][:1000]
    start = time.perf_counter()
    conn.execute("update procrastinate_jobs set status = 'todo' where id = any(%s)", (rest,))
    result[f"failed → todo, {len(rest):,} rows in one statement (ms)"] = (
        time.perf_counter() - start
    ) * 1000
    # The same moves again, timed by the server: Jobdash's trigger time per statement.
    conn.execute("update procrastinate_jobs set status = 'doing' where id = any(%s)", (half,))
    result["doing → failed: trigger µs/statement (server)"] = _trigger_us(conn, half, "failed")
    result["failed → todo: trigger µs/statement (server)"] = _trigger_us(conn, half, "todo")
    return result


def _use(conn: psycopg.Connection, variant: str, shipped: str) -> None:
    action = "disable" if variant == "triggers off" else "enable"
    for trigger in TRIGGERS:
        conn.execute(
            sql.SQL("alter table procrastinate_jobs {} trigger {}").format(
                sql.SQL(action), sql.Identifier(trigger)
            )
        )
    if variant == "without subtransaction":
        conn.execute(without_subtransaction(shipped))
    else:
        conn.execute(shipped)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    shipped = shipped_function()
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with scratch_database(args.server, DB) as url:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            _round(conn, args.jobs)  # warm-up
            for number in range(args.rounds):
                # Rotate the order so that no variant always runs first in a round.
                for variant in VARIANTS[number % 3 :] + VARIANTS[: number % 3]:
                    _use(conn, variant, shipped)
                    runs[variant].append(_round(conn, args.jobs))
            _use(conn, VARIANTS[0], shipped)
        names = list(runs[VARIANTS[0]][0])
        print("| statement | " + " | ".join(VARIANTS) + " | subtransaction adds |")
        print("|---|" + "---|" * (len(VARIANTS) + 1))
        for name in names:
            medians = [statistics.median(r[name] for r in runs[v]) for v in VARIANTS]
            cells = " | ".join(f"{m:.3f}" for m in medians)
            print(f"| {name} | {cells} | {medians[0] - medians[1]:+.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
