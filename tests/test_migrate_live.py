"""`jobdash migrate` against a queue that keeps moving (issue 8 item 3, issue 9 section 2): no
deadlock, no lost job, backfills exact, and an interrupted run completed by the next."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psycopg
import pytest
from procrastinate import App, PsycopgConnector

from jobdash.core.schema import load_migrations, migrate, migration_files
from tests.migrate_helpers import (
    QUEUES,
    Queue,
    apply_procrastinate_schema,
    failed_list_mismatches,
    jobdash_objects,
    ledger_mismatches,
    poll_until,
)


@pytest.fixture
def procrastinate_url(empty_database_url):
    apply_procrastinate_schema(empty_database_url)
    return empty_database_url


def _history(conn: psycopg.Connection, queue: Queue, jobs: int, run_share: float = 0.8) -> None:
    """`jobs` jobs, most of them run (a fifth failed, some of those retried), the rest todo.
    Set-based, with Procrastinate's triggers writing the events, so thousands take a moment."""
    ids = queue.defer(jobs)
    run = ids[: int(jobs * run_share)]
    conn.execute(
        "update procrastinate_jobs set status = 'doing', worker_id = %s where id = any(%s)",
        (queue.worker_id, run),
    )
    conn.execute(
        "update procrastinate_jobs set attempts = 1, status = case when id %% 5 = 0"
        " then 'failed' else 'succeeded' end::procrastinate_job_status where id = any(%s)",
        (run,),
    )
    for _ in range(int(jobs * (1 - run_share)) // 4):
        queue.retry_failed()


def test_backfills_stay_exact_when_jobs_move_between_steps(procrastinate_url):
    """Between every step, the queue defers, fetches, fails, finishes, retries and deletes jobs
    through Procrastinate's own SQL functions. Afterwards the failed-count ledger (the one
    backfill: a recount after its triggers exist) equals the real counts."""
    calls = []
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        queue = Queue(conn)
        _history(conn, queue, 400)

        def between(step) -> None:
            calls.append(step.label)
            queue.churn()

        migrate(procrastinate_url, between_steps=between, batch_size=40)
        assert len(calls) >= sum(len(m.steps) for m in load_migrations())  # churned each time
        assert ledger_mismatches(conn) == {}
        assert failed_list_mismatches(conn) == {}
        present = {r[0] for r in conn.execute("select id from procrastinate_jobs")}
        assert present == set(queue.deferred) - queue.deleted
        # ... and the triggers keep them exact from there on.
        for _ in range(20):
            queue.churn()
        assert ledger_mismatches(conn) == {}
        assert failed_list_mismatches(conn) == {}


def _noop_app(url: str) -> App:
    app = App(connector=PsycopgConnector(conninfo=url, min_size=1, max_size=6))

    @app.task(name="noop")
    def noop(n: int) -> None:
        if n % 7 == 0:
            raise ValueError("every seventh job fails")

    return app


class _Errors(logging.Handler):
    """Every error a Procrastinate worker logs, except the task failures we asked for."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "action", None) not in {"job_error", "job_error_retry"}:
            self.records.append(record)


def test_migrate_on_a_live_queue_blocks_nothing_and_loses_nothing(procrastinate_url):
    """A real Procrastinate worker drains and a deferrer defers while `jobdash migrate`
    runs on some thousands of jobs: migrate succeeds, neither sees an error (the wave-1
    migrate deadlocked them), every deferred job is there, the backfills are exact."""
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        seed_queue = Queue(conn)
        _history(conn, seed_queue, 5000, run_share=0.95)  # and 250 jobs of backlog
    app = _noop_app(procrastinate_url)
    errors = _Errors()
    logging.getLogger("procrastinate").addHandler(errors)
    stop = threading.Event()
    deferred: list[int] = []
    deferrer_errors: list[Exception] = []

    def deferrer() -> None:
        # Its own App, as a web process deferring jobs has.
        web = _noop_app(procrastinate_url)
        with web.open():
            n = 1
            while not stop.is_set():
                try:
                    deferred.append(web.configure_task("noop", queue=QUEUES[n % 3]).defer(n=n))
                except Exception as exc:  # noqa: BLE001 - asserted below
                    deferrer_errors.append(exc)
                n += 1
                time.sleep(0.02)

    async def work(stopped: asyncio.Event) -> None:
        async with app.open_async():
            worker = asyncio.create_task(app.run_worker_async(
                concurrency=4, install_signal_handlers=False, fetch_job_polling_interval=0.1,
                listen_notify=False,
            ))
            while not stopped.is_set() and not worker.done():
                await asyncio.sleep(0.05)
            if worker.done():
                await worker  # surfaces a crash
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    loop = asyncio.new_event_loop()
    stopped = asyncio.Event()
    worker_errors: list[BaseException] = []

    def worker_thread() -> None:
        try:
            loop.run_until_complete(work(stopped))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            worker_errors.append(exc)

    threads = [threading.Thread(target=deferrer), threading.Thread(target=worker_thread)]
    for t in threads:
        t.start()
    lines: list[str] = []
    try:
        poll_until(lambda: len(deferred) > 20)
        report = migrate(procrastinate_url, notify=lines.append, batch_size=500)
        moved = len(deferred)
        poll_until(lambda: len(deferred) > moved + 10)  # traffic on the finished schema
    finally:
        stop.set()
        threads[0].join(timeout=30)
        loop.call_soon_threadsafe(stopped.set)
        threads[1].join(timeout=30)
        logging.getLogger("procrastinate").removeHandler(errors)
    assert report.applied == [name for name, _ in migration_files()]
    assert deferrer_errors == []
    assert worker_errors == []
    assert [r.getMessage() for r in errors.records if r.levelno >= logging.ERROR] == []
    assert not any("deadlock" in r.getMessage().lower() for r in errors.records)
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        present = {r[0] for r in conn.execute("select id from procrastinate_jobs")}
        assert set(deferred) <= present
        assert set(seed_queue.deferred) <= present
        assert ledger_mismatches(conn) == {}
        assert failed_list_mismatches(conn) == {}


_KILLED_MIGRATE = """
import os, signal, sys
from jobdash.core.schema import migrate

def between(step):
    if step.what == sys.argv[2]:
        os.kill(os.getpid(), signal.SIGKILL)

migrate(sys.argv[1], between_steps=between, batch_size=50)
"""


@pytest.mark.parametrize(("migration", "killed_after"), [
    ("001_instrumentation.sql", "create jobdash_workers"),
    # The ledger's triggers exist, its recount has not run.
    ("006_light_hot_path.sql", "count moves into and out of failed, row by row, filtered by "
     "WHEN clauses"),
    # One index of an earlier version dropped, the other not.
    ("006_light_hot_path.sql", "drop index jobdash_jobs_open_idx"),
    # The trigger lists failures, the backfill has not run.
    ("008_failed_jobs.sql", "keep the failed list with the ledger"),
    # The backfill killed after its first batch.
    ("008_failed_jobs.sql", "list the failed jobs there are (backfill)"),
])
def test_a_migrate_killed_midway_is_completed_by_the_next(
    procrastinate_url, database_url, migration, killed_after
):
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        queue = Queue(conn)
        _history(conn, queue, 300)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED_MIGRATE), procrastinate_url,
         killed_after],
        capture_output=True, text=True, timeout=60, env={**os.environ},
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        queue.conn = conn
        for _ in range(10):  # the queue moves on while nobody migrates
            queue.churn()
    report = migrate(procrastinate_url, batch_size=50)
    assert migration in report.applied
    assert jobdash_objects(procrastinate_url) == jobdash_objects(database_url)
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        assert ledger_mismatches(conn) == {}
        assert failed_list_mismatches(conn) == {}
