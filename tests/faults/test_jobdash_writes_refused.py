"""Jobdash's own tables refuse writes (a full disk, simulated) or hold a lock past any
reasonable wait (a statement that would time out), under a running instrumented worker.

A full disk is simulated by a trigger that raises PostgreSQL's `disk_full` error on every
write to the tables the instrumentation writes (errors, workers, schedules) and the history
tables. Procrastinate's own writes are untouched, so the jobs' outcomes must be too: every job
runs exactly once and succeeds, the instrumentation logs one throttled warning per kind and
carries on, and it writes again as soon as the tables accept writes.

The tables Jobdash's triggers write inside Procrastinate's own transactions (the failed ledger
and list) are refused or locked in the last two tests: the worker's finish of a job failing
for good commits anyway (the trigger gives way with a WARNING after at most its 500 ms
lock_timeout), and jobdash_recount_failed() repairs both once the tables are back.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from procrastinate import App, PsycopgConnector
from streamlit.testing.v1 import AppTest

from jobdash.app.read import instrumentation_health
from tests.dashboard_app import MAIN, reset_state
from tests.faults.helpers import (
    Process,
    RunLedger,
    defer_runs,
    fault_worker,
    prepare_fault_runs,
    query_none,
    scalar,
    wait_for,
)

pytestmark = pytest.mark.slow

# The tables the instrumentation and the rollup write (not the ones Jobdash's triggers write
# inside Procrastinate's own transactions: see the report in docs/benchmarks-viewers.md).
REFUSING_TABLES = [
    "jobdash_job_errors",
    "jobdash_workers",
    "jobdash_periodic_tasks",
    "jobdash_history_minute",
    "jobdash_history_queue_minute",
    "jobdash_queue_depth_minute",
    "jobdash_error_groups_minute",
    "jobdash_rollup_state",
]
DISK_FULL = """
CREATE FUNCTION fault_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'could not extend file of %: No space left on device', TG_TABLE_NAME
        USING ERRCODE = 'disk_full', HINT = 'Check free disk space.';
END $$
"""


# The tables the failed ledger's trigger writes inside Procrastinate's transactions.
TRIGGER_TABLES = ["jobdash_failed_counts", "jobdash_failed_jobs"]


def refuse_writes(url: str, tables: list[str] = REFUSING_TABLES) -> None:
    query_none(url, DISK_FULL)
    for table in tables:
        query_none(
            url,
            f"CREATE TRIGGER fault_disk_full BEFORE INSERT OR UPDATE OR DELETE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION fault_disk_full()",
        )


def accept_writes(url: str) -> None:
    query_none(url, "DROP FUNCTION fault_disk_full() CASCADE")


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def dashboard_notices(url: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    """The warnings and errors of one full run of the dashboard page (caches fresh)."""
    monkeypatch.setenv("JOBDASH_DATABASE_URL", url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_state()
    try:
        at = AppTest.from_file(str(MAIN), default_timeout=60).run()
        assert not at.exception
        return [n.value.replace("\\", "") for n in [*at.warning, *at.error]]
    finally:
        reset_state()


def all_succeeded(url: str, jobs: list[int]) -> bool:
    done = scalar(
        url,
        "select count(*) from procrastinate_jobs where id = any(%s) and status = 'succeeded'",
        (jobs,),
    )
    return done == len(jobs)


def started_worker(url: str, folder, processes: list[Process]) -> Process:
    prepare_fault_runs(url)
    worker = fault_worker(url, folder)
    processes.append(worker)
    wait_for(lambda: scalar(url, "select count(*) from jobdash_workers") > 0, 30, "a heartbeat")
    return worker


def test_full_disk_on_jobdash_tables_changes_no_job_outcome(
    database_url, tmp_path, processes, monkeypatch
):
    url = database_url
    monkeypatch.setattr(instrumentation_health, "METRICS_LAG_S", 2.0)
    worker = started_worker(url, tmp_path, processes)
    refuse_writes(url)
    refused_at = scalar(url, "select now()")
    jobs = defer_runs(url, range(24), seconds=0.05, fail_every=4)  # 6 fail once on purpose
    wait_for(lambda: all_succeeded(url, jobs), 60, "every job to succeed", every=0.25)
    wait_for(lambda: "worker registry update failed" in worker.output(), 15, "a heartbeat")

    RunLedger.read(url, jobs).assert_each_ran_exactly_once(len(jobs))
    assert scalar(url, "select count(*) from jobdash_job_errors") == 0
    assert scalar(url, "select max(updated_at) from jobdash_workers") < refused_at
    log = worker.output()
    # One warning per kind, with the reason, though six errors and many heartbeats failed.
    assert log.count("jobdash: could not record the error of job") == 1, log
    assert log.count("jobdash: worker registry update failed") == 1, log
    assert "No space left on device" in log
    assert worker.alive(), log

    # The dashboard says what is wrong, one line in each panel concerned.
    wait_for(
        lambda: (
            scalar(
                url,
                "select max(extract(epoch from pw.last_heartbeat - jw.updated_at)) from"
                " procrastinate_workers pw join jobdash_workers jw on jw.worker_id = pw.id",
            )
            > 2.5
        ),
        10,
        "the worker's Jobdash row to fall behind its heartbeat",
    )
    notices = dashboard_notices(url, monkeypatch)
    assert any(
        n.startswith("Jobdash's metrics of 1 live worker are") and "jobdash_workers" in n
        for n in notices
    ), notices
    assert any(
        n.startswith("6 failed attempts of the last 10 min have no recorded error")
        and "jobdash_job_errors" in n
        for n in notices
    ), notices

    accept_writes(url)
    resumed_at = scalar(url, "select now()")
    more = defer_runs(url, range(24, 32), seconds=0.05, fail_every=4)  # 24 and 28 fail once
    wait_for(lambda: all_succeeded(url, more), 60, "the later jobs to succeed", every=0.25)
    recorded = "select count(*) from jobdash_job_errors where job_id = any(%s)"
    assert scalar(url, recorded, (more,)) == 2
    wait_for(
        lambda: scalar(url, "select max(updated_at) from jobdash_workers") > resumed_at,
        10,
        "heartbeats to be written again",
    )
    RunLedger.read(url, jobs + more).assert_each_ran_exactly_once(len(jobs + more))


def test_a_locked_errors_table_does_not_hold_jobs_up(
    database_url, tmp_path, processes, monkeypatch
):
    """A statement of the instrumentation that cannot finish (here: waiting on a lock held
    longer than the worker's write timeout) is given up; the job's outcome is saved. The
    dashboard's statements on those tables time out: its panel says so."""
    url = database_url
    worker = started_worker(url, tmp_path, processes)
    with psycopg.connect(url) as locker:
        locker.execute("LOCK TABLE jobdash_job_errors, jobdash_workers IN ACCESS EXCLUSIVE MODE")
        jobs = defer_runs(url, range(8), seconds=0.05, fail_every=4)  # 0 and 4 fail once
        wait_for(lambda: all_succeeded(url, jobs), 40, "every job to succeed under the lock")
        assert worker.alive(), worker.output()
        notices = dashboard_notices(url, monkeypatch, JOBDASH_STATEMENT_TIMEOUT_MS="500")
        assert any(
            n.startswith("Worker Health unavailable") and "statement timeout" in n for n in notices
        ), notices
        locker.rollback()
    RunLedger.read(url, jobs).assert_each_ran_exactly_once(len(jobs))
    assert "jobdash: could not record the error of job" in worker.output()


def defer_failing(url: str, numbers: range) -> list[int]:
    app = App(connector=PsycopgConnector(conninfo=url, min_size=1, max_size=1))
    with app.open():
        task = app.configure_task("fail_for_good", queue="faults")
        return [task.defer(n=n) for n in numbers]


def all_failed(url: str, jobs: list[int]) -> bool:
    done = scalar(
        url,
        "select count(*) from procrastinate_jobs where id = any(%s) and status = 'failed'",
        (jobs,),
    )
    return done == len(jobs)


def failed_list_and_ledger(url: str) -> tuple[int, int, int]:
    """(failed jobs, listed failed jobs, the ledger's total)."""
    return (
        scalar(url, "select count(*) from procrastinate_jobs where status = 'failed'"),
        scalar(
            url,
            "select count(*) from jobdash_failed_jobs f join procrastinate_jobs j"
            " on j.id = f.job_id and j.status = 'failed'",
        ),
        scalar(url, "select coalesce(sum(delta), 0) from jobdash_failed_counts"),
    )


def test_full_disk_on_the_failed_ledger_and_list_fails_no_finish(
    database_url, tmp_path, processes
):
    url = database_url
    worker = started_worker(url, tmp_path, processes)
    refuse_writes(url, TRIGGER_TABLES)
    jobs = defer_failing(url, range(6))
    wait_for(lambda: all_failed(url, jobs), 60, "every job to end failed", every=0.25)
    assert worker.alive(), worker.output()
    assert failed_list_and_ledger(url) == (6, 0, 0)  # our count is behind, nothing else
    accept_writes(url)
    more = defer_failing(url, range(6, 8))
    wait_for(lambda: all_failed(url, more), 60, "the later jobs to end failed", every=0.25)
    assert failed_list_and_ledger(url) == (8, 2, 2)  # the trigger writes again
    query_none(url, "select jobdash_recount_failed()")
    assert failed_list_and_ledger(url) == (8, 8, 8)


def test_a_locked_failed_list_holds_a_finish_up_at_most_its_lock_timeout(
    database_url, tmp_path, processes
):
    url = database_url
    worker = started_worker(url, tmp_path, processes)
    with psycopg.connect(url) as locker:
        locker.execute("LOCK TABLE jobdash_failed_jobs IN ACCESS EXCLUSIVE MODE")
        started = scalar(url, "select clock_timestamp()")
        jobs = defer_failing(url, range(4))
        wait_for(lambda: all_failed(url, jobs), 30, "every job to end failed under the lock")
        # Each finish waited for the lock (500 ms), then gave way; two run at a time.
        elapsed = scalar(url, "select extract(epoch from clock_timestamp() - %s)", (started,))
        assert elapsed < 20
        assert worker.alive(), worker.output()
        locker.rollback()
    assert failed_list_and_ledger(url) == (4, 0, 0)
    query_none(url, "select jobdash_recount_failed()")
    assert failed_list_and_ledger(url) == (4, 4, 4)
