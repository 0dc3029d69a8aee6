"""Helpers (no tests) for the migrate and uninstall tests: a database with only Procrastinate's
schema, a queue driven through Procrastinate's own SQL functions, and the invariants the
backfills must keep."""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections.abc import Callable

import psycopg
from procrastinate.schema import SchemaManager

from jobdash.core.database import connect

QUEUES = ["default", "emails", "reports"]

# Jobdash's migrations build no index on Procrastinate's tables (each one slowed defers):
# the runner's handling of concurrent index builds is tested with this one.
TEST_INDEX = "jobdash_test_idx"
TEST_INDEX_MIGRATION = (
    "999_test_index.sql",
    f"-- step: build index {TEST_INDEX}\n"
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {TEST_INDEX}"
    " ON procrastinate_jobs (queue_name, id);\n",
)
POLL_S = 0.05


def apply_procrastinate_schema(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(SchemaManager.get_schema())


class Queue:
    """Defers, fetches, finishes, retries and deletes jobs the way Procrastinate does: with its
    SQL functions, one short transaction each (autocommit)."""

    def __init__(self, conn: psycopg.Connection, seed: int = 7) -> None:
        self.conn = conn
        self.random = random.Random(seed)
        row = conn.execute("select worker_id from procrastinate_register_worker_v1()").fetchone()
        assert row is not None
        self.worker_id = row[0]
        self.deferred: list[int] = []
        self.deleted: set[int] = set()

    def defer(self, n: int, task: str = "noop") -> list[int]:
        queue = self.random.choice(QUEUES)
        row = self.conn.execute(
            "select procrastinate_defer_jobs_v1(array(select row(%s, %s, 0, null, null,"
            " jsonb_build_object('n', g), null)::procrastinate_job_to_defer_v1"
            " from generate_series(1, %s) g))",
            (queue, task, n),
        ).fetchone()
        assert row is not None
        self.deferred += row[0]
        return row[0]

    def fetch(self) -> int | None:
        row = self.conn.execute(
            "select id from procrastinate_fetch_job_v2(null, %s)", (self.worker_id,)
        ).fetchone()
        return row[0] if row and row[0] is not None else None

    def finish(self, job_id: int, status: str) -> None:
        self.conn.execute("select procrastinate_finish_job_v1(%s, %s, false)", (job_id, status))

    def retry_failed(self) -> int | None:
        row = self.conn.execute(
            "select id from procrastinate_jobs where status = 'failed' order by random() limit 1"
        ).fetchone()
        if not row:
            return None
        self.conn.execute(
            "select procrastinate_retry_job_v2(%s, now(), null, null, null)", (row[0],)
        )
        return row[0]

    def delete_finished(self) -> int | None:
        row = self.conn.execute(
            "delete from procrastinate_jobs where id = (select id from procrastinate_jobs"
            " where status = 'succeeded' order by random() limit 1) returning id"
        ).fetchone()
        if row:
            self.deleted.add(row[0])
        return row[0] if row else None

    def churn(self) -> None:
        """A little of everything a live queue does."""
        self.defer(self.random.randint(1, 5))
        for _ in range(self.random.randint(1, 4)):
            job_id = self.fetch()
            if job_id is None:
                break
            outcome = self.random.choice(["succeeded", "failed", "succeeded", None])
            if outcome:  # None: left `doing`
                self.finish(job_id, outcome)
        if self.random.random() < 0.5:
            self.retry_failed()
        if self.random.random() < 0.3:
            self.delete_finished()


def ledger_mismatches(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """{queue: (ledger, real)} where the failed-count ledger disagrees with the jobs table."""
    rows = conn.execute(
        """
        with ledger as (select queue_name, sum(delta)::bigint n from jobdash_failed_counts
                        group by 1),
             real as (select queue_name, count(*)::bigint n from procrastinate_jobs
                      where status = 'failed' group by 1)
        select coalesce(l.queue_name, r.queue_name), coalesce(l.n, 0), coalesce(r.n, 0)
        from ledger l full join real r on r.queue_name = l.queue_name
        where coalesce(l.n, 0) <> coalesce(r.n, 0)
        """
    ).fetchall()
    return {q: (a, b) for q, a, b in rows}


def failed_list_mismatches(conn: psycopg.Connection) -> dict[int, tuple]:
    """{job id: (listed (queue, task) or None, real (queue, task) or None)} where the failed
    list (jobdash_failed_jobs) disagrees with the failed jobs of procrastinate_jobs."""
    rows = conn.execute(
        """
        with real as (select id, queue_name::text q, task_name::text t from procrastinate_jobs
                      where status = 'failed')
        select coalesce(f.job_id, r.id), f.queue_name, f.task_name, r.q, r.t
        from jobdash_failed_jobs f full join real r on r.id = f.job_id
        where f.job_id is null or r.id is null or (f.queue_name, f.task_name) <> (r.q, r.t)
        """
    ).fetchall()
    return {
        job: ((fq, ft) if fq is not None else None, (rq, rt) if rq is not None else None)
        for job, fq, ft, rq, rt in rows
    }


def schema_dump(url: str) -> str:
    """`pg_dump --schema-only`, with the one line that differs between any two dumps of the
    same schema removed: since 15.14 the dump opens with `\\restrict <random key>` (and ends
    with `\\unrestrict <key>`), a fresh key each run."""
    pg_dump = shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump"
    out = subprocess.run(
        [pg_dump, "--schema-only", "--dbname", url],
        check=True, capture_output=True, text=True,
    ).stdout
    return "\n".join(
        line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )


def jobdash_objects(url: str) -> list[str]:
    from jobdash.core.schema.uninstall import find_objects

    with connect(url) as conn:
        return sorted(f"{r.kind} {r.name}" for r in find_objects(conn))


def poll_until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(POLL_S)
