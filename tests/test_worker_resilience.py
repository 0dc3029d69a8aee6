"""The worker rides out database outages and says when it gives up (issue 8, item 2).

Against a private PostgreSQL (tests/pg_helpers.py) that the tests stop and start. One outage
is longer than the 30 s a Procrastinate pool waits for a connection; the others are as short
as the behaviour they check allows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import ConnectorException

from jobdash.jobs.instrumentation import InstrumentedWorker, log_throttle
from jobdash.jobs.instrumentation.outages import (
    HEALTHY_RUN_S,
    MAX_RETRY_S,
    FailureStreak,
    failure_reason,
    pool_options,
    retry_delay,
)
from tests.outage_app import app
from tests.pg_helpers import PrivatePostgres, private_postgres
from tests.test_instrumentation_support import poll_until, query_one, run_async

# Longer than psycopg_pool's default 30 s wait for a connection, which is all the reconnecting
# Procrastinate's own worker does.
LONG_OUTAGE_S = 35
WORKSPACE = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture
def db(pg: PrivatePostgres) -> str:
    """A migrated database on the private server, which is running when the test starts."""
    if not pg.running:
        pg.start()
    return pg.create_database(migrated=True)


@pytest.fixture(autouse=True)
def fresh_warning_throttle(monkeypatch):
    monkeypatch.setattr(log_throttle, "_last_warned", {})


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def query_conn(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def job_status(url: str, job_id: int) -> str:
    return query_one(url, "select status::text from procrastinate_jobs where id = %s", (job_id,))[0]


def defer_nap(url: str, seconds: float, queue: str) -> int:
    app = App(connector=PsycopgConnector(conninfo=url, min_size=1, max_size=1))
    with app.open():
        return app.configure_task("nap", queue=queue).defer(seconds=seconds)


class Process:
    """A worker in a subprocess, its output in files (a pipe would fill up and block it)."""

    def __init__(self, command: list[str], folder: Path, name: str, **env: str) -> None:
        self.out = folder / f"{name}.out"
        self.err = folder / f"{name}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.popen = subprocess.Popen(
                command,
                stdout=out,
                stderr=err,
                text=True,
                cwd=WORKSPACE,
                env={**os.environ, "PYTHONPATH": str(WORKSPACE), **env},
            )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def stop(self) -> None:
        if self.alive():
            self.popen.kill()
            self.popen.wait()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def jobdash_worker(url: str, tmp_path: Path, tolerance_s: float, name: str = "ours") -> Process:
    command = [sys.executable, "-m", "jobdash", "worker", "--database-url", url]
    command += ["--app", "tests.outage_app:app", "--queues", "ours", "--heartbeat-interval", "1"]
    return Process(command, tmp_path, name, JOBDASH_WORKER_OUTAGE_TOLERANCE_S=str(tolerance_s))


def procrastinate_worker(url: str, tmp_path: Path) -> Process:
    command = [sys.executable, "-m", "procrastinate", "--app", "tests.outage_app.app", "worker"]
    command += ["--queues", "plain"]
    return Process(command, tmp_path, "plain", OUTAGE_TEST_DATABASE_URL=url)


def registered_workers(url: str) -> int:
    return query_one(url, "select count(*) from procrastinate_workers")[0]


def started_and_idle(url: str) -> bool:
    """The worker registered and ran the rollup it defers at start (no job is running)."""
    (idle,) = query_one(
        url,
        "select exists (select from procrastinate_workers)"
        " and exists (select from procrastinate_jobs where task_name = 'jobdash:rollup')"
        " and not exists (select from procrastinate_jobs where status in ('todo', 'doing'))",
    )
    return idle


def test_ours_rides_out_an_outage_that_procrastinates_own_worker_does_not(
    pg, db, tmp_path, processes, record_property
):
    ours = jobdash_worker(db, tmp_path, tolerance_s=120)
    plain = procrastinate_worker(db, tmp_path)
    processes += [ours, plain]
    wait_for(lambda: registered_workers(db) == 2, 20, "both workers to register")
    # A job each whose body ends while the database is down.
    ours_before = defer_nap(db, 2, "ours")
    plain_before = defer_nap(db, 2, "plain")
    wait_for(
        lambda: {job_status(db, ours_before), job_status(db, plain_before)} == {"doing"},
        20,
        "both jobs to start",
    )

    pg.stop()
    time.sleep(LONG_OUTAGE_S)  # the outage itself, not a synchronisation
    pg.start()

    # Ours waited for the database, saved the outcome, and carries on.
    wait_for(lambda: job_status(db, ours_before) == "succeeded", 20, "the outcome to be saved")
    after = defer_nap(db, 0, "ours")
    wait_for(lambda: job_status(db, after) == "succeeded", 20, "a job deferred after the outage")
    assert ours.alive(), ours.output()
    assert "the Procrastinate worker stopped" in ours.output()

    # Procrastinate 3.10's worker waited 30 s for a connection to save its job's outcome, then
    # dropped it: the job stays `doing` (a stalled-job retry would run it again). Whether it
    # also exits (code 1) depends on a race: its listener fails, stopping the worker, when it
    # tries to reconnect while the server is shutting down or down, not when it is back.
    assert job_status(db, plain_before) == "doing", plain.output()
    record_property("procrastinate_worker", "running" if plain.alive() else plain.popen.poll())

    ours.popen.send_signal(signal.SIGTERM)
    assert ours.popen.wait(timeout=20) == 0, ours.output()
    assert "jobdash worker: stopped" in ours.output()
    (doing,) = query_one(
        db, "select count(*) from procrastinate_jobs where queue_name = 'ours' and status = 'doing'"
    )
    assert doing == 0


def test_gives_up_after_the_tolerance_with_one_line_and_a_failing_exit_code(
    pg, db, tmp_path, processes
):
    ours = jobdash_worker(db, tmp_path, tolerance_s=2)
    processes.append(ours)
    wait_for(lambda: started_and_idle(db), 20, "the worker to start")
    pg.stop()
    started = time.monotonic()
    assert ours.popen.wait(timeout=30) == 1, ours.output()
    assert time.monotonic() - started < 20
    last_line = ours.err.read_text().strip().splitlines()[-1]
    assert last_line.startswith("jobdash worker: error: the database was unreachable for ")
    assert "s, giving up: database error: " in last_line, last_line
    assert "jobdash worker: stopped" not in ours.output()


def test_a_stop_during_an_outage_still_exits_0(pg, db, tmp_path, processes):
    ours = jobdash_worker(db, tmp_path, tolerance_s=2)
    processes.append(ours)
    wait_for(lambda: started_and_idle(db), 20, "the worker to start")
    pg.stop()
    ours.popen.send_signal(signal.SIGTERM)
    assert ours.popen.wait(timeout=20) == 0, ours.output()
    assert "jobdash worker: stopped" in ours.output()


HEARTBEAT_BREAKERS = """
create table test_breaker (broken boolean);
insert into test_breaker values (true);
create function test_break_procrastinate_heartbeat() returns trigger language plpgsql as $$
begin
  if exists (select from test_breaker) then raise exception 'heartbeat broken by the test'; end if;
  return new;
end $$;
create trigger test_break_heartbeat before update on procrastinate_workers
  for each row execute function test_break_procrastinate_heartbeat();
-- Slower than the statement timeout below: every registry write is cancelled by the server.
create function test_slow_registry() returns trigger language plpgsql as $$
begin
  perform pg_sleep(2);
  return new;
end $$;
create trigger test_slow_registry before insert or update on jobdash_workers
  for each row execute function test_slow_registry();
"""


def test_failing_heartbeats_never_stop_the_worker_nor_strand_a_job(db, caplog):
    with query_conn(db) as conn:
        conn.execute(HEARTBEAT_BREAKERS)
        conn.execute(f"alter database {conn.info.dbname} set statement_timeout = '1s'")
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        async with app.open_async():
            # With the maintenance task: without a periodic task, Procrastinate 3.10's side
            # task monitor returns when the deferrer does, at once, and no longer notices a
            # failing side task.
            worker = InstrumentedWorker(
                app,
                queues=["ours"],
                install_signal_handlers=False,
                update_heartbeat_interval=0.3,
                heartbeat_interval=0.3,
                fetch_job_polling_interval=0.2,
                outage_tolerance_s=60,
            )
            task = asyncio.create_task(worker.run_async())
            try:
                napping = await asyncio.to_thread(defer_nap, db, 1.5, "ours")
                await poll_until(lambda: job_status(db, napping) == "succeeded", 20, task)
                restarted = "worker stopped (RaiseException: heartbeat broken by the test)"
                await poll_until(lambda: restarted in caplog.text, 10, task)
                await asyncio.to_thread(query_one, db, "delete from test_breaker returning 1")
                after = await asyncio.to_thread(defer_nap, db, 0, "ours")
                await poll_until(lambda: job_status(db, after) == "succeeded", 20, task)
                assert not task.done()
            finally:
                worker.stop()
                await asyncio.wait_for(task, timeout=20)

    with app.replace_connector(PsycopgConnector(conninfo=db, min_size=1, max_size=4)):
        run_async(scenario())
    registry_warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "worker registry update failed" in r.getMessage()
    ]
    assert len(registry_warnings) == 1  # throttled: at most one a minute
    assert "the Procrastinate worker stopped" in caplog.text
    (doing,) = query_one(db, "select count(*) from procrastinate_jobs where status = 'doing'")
    assert doing == 0


def test_a_failing_maintenance_task_does_not_stop_the_worker(db):
    with query_conn(db) as conn:
        conn.execute(
            "create function test_break_rollup() returns trigger language plpgsql as $$"
            " begin raise exception 'rollup broken by the test'; end $$;"
            " create trigger test_break_rollup before update on jobdash_rollup_state"
            " for each row execute function test_break_rollup()"
        )

    def rollup_failed() -> bool:
        (failed,) = query_one(
            db,
            "select count(*) from procrastinate_jobs where task_name = 'jobdash:rollup'"
            " and status = 'failed'",
        )
        return failed > 0

    async def scenario() -> None:
        async with app.open_async():
            worker = InstrumentedWorker(
                app,
                queues=["ours"],
                install_signal_handlers=False,
                fetch_job_polling_interval=0.2,
            )
            task = asyncio.create_task(worker.run_async())
            try:
                await poll_until(rollup_failed, 20, task)  # deferred when the worker starts
                after = await asyncio.to_thread(defer_nap, db, 0, "ours")
                await poll_until(lambda: job_status(db, after) == "succeeded", 20, task)
            finally:
                worker.stop()
                await asyncio.wait_for(task, timeout=20)

    with app.replace_connector(PsycopgConnector(conninfo=db, min_size=1, max_size=4)):
        run_async(scenario())


def test_restart_backoff_grows_to_a_ceiling():
    assert [retry_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, MAX_RETRY_S, MAX_RETRY_S]


def test_a_streak_gives_up_only_after_the_tolerance():
    streak = FailureStreak(tolerance_s=100)
    streak.run_failed(run_started_at=0, failed_at=10, reason="side task listener failed")
    assert not streak.exhausted(109)
    assert streak.next_delay(10) == 1
    assert streak.next_delay(109.5) == 0.5  # the last probe comes when the tolerance runs out
    streak.probed(False, "connection refused")
    assert streak.exhausted(110)
    assert streak.give_up_message(110) == (
        "the database was unreachable for 100 s, giving up: connection refused"
    )


def test_a_healthy_run_starts_a_new_streak():
    streak = FailureStreak(tolerance_s=100)
    streak.run_failed(run_started_at=0, failed_at=10, reason="a")
    streak.probed(True)
    streak.run_failed(run_started_at=11, failed_at=12, reason="b")  # quick failure: same streak
    assert (streak.started_at, streak.failures, streak.database_answered) == (10, 2, True)
    assert streak.give_up_message(110).startswith("the worker kept stopping for 100 s")
    streak.run_failed(run_started_at=20, failed_at=20 + HEALTHY_RUN_S, reason="c")
    assert (streak.started_at, streak.failures, streak.database_answered) == (
        20 + HEALTHY_RUN_S,
        1,
        False,
    )


def test_failure_reason_names_the_database_error_behind_procrastinates_wrapper():
    try:
        try:
            raise psycopg.OperationalError("connection refused")
        except psycopg.OperationalError as exc:
            raise ConnectorException() from exc
    except ConnectorException as wrapped:
        assert failure_reason(wrapped) == "database error: connection refused"
    assert failure_reason(None) == "it stopped without saying why"


def test_pool_options_wait_as_long_as_the_tolerance():
    options = pool_options(120)
    assert options["timeout"] == 120
    assert options["reconnect_timeout"] < 120
