"""`pg_terminate_backend` on every Jobdash connection in the middle of "retry / delete all
matching" on a few thousand failed jobs.

Each batch is one transaction holding its audit row, so a batch the kill interrupts is either
done (every job once, its audit row written) or untouched (no audit row); running the action
again finishes the rest and does nothing twice. Two ways of killing: once, deterministically
inside the second batch (a row lock of the test holds it there), and over and over at
whatever moment the kills land, resuming after each until the action completes.
"""

from __future__ import annotations

import random
import threading

import psycopg
import pytest

from jobdash.app.actions import jobs as actions
from jobdash.app.actions.bulk import BulkRun
from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.core.auth.identity import Action
from tests.actions_helpers import as_operator, make_failed_jobs
from tests.faults.helpers import wait_for

JOBS = 3500
BATCH = 1000
RUNS = {Action.RETRY: actions.retry_all_matching, Action.DELETE: actions.delete_all_matching}

TERMINATE_JOBDASH = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND application_name LIKE 'jobdash%%'
"""


def start(action: Action, url: str) -> BulkRun:
    run = BulkRun(action, FailedJobFilter(), JOBS)
    run.start(RUNS[action], url, as_operator())
    return run


def finish(run: BulkRun) -> BulkRun:
    assert run.thread is not None
    run.thread.join(timeout=120)
    assert run.finished
    return run


def waiting_on_lock(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name LIKE 'jobdash%%' AND wait_event_type = 'Lock'"
    ).fetchone()
    return bool(row and row[0])


def audit_done(conn: psycopg.Connection, action: Action) -> tuple[int, int]:
    """(audit rows, sum of their done counts) of this action."""
    rows, done = conn.execute(
        "SELECT count(*), coalesce(sum(done), 0) FROM jobdash_audit_log WHERE action = %s",
        (str(action),),
    ).fetchone()
    return rows, done


def changed(conn: psycopg.Connection, action: Action, ids: list[int]) -> int:
    """How many of the jobs the action changed, each counted once however often it acted."""
    if action == Action.RETRY:
        sql = "SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(%s) AND status = 'todo'"
    else:
        sql = "SELECT count(DISTINCT job_id) FROM jobdash_deleted_jobs WHERE job_id = ANY(%s)"
    return conn.execute(sql, (ids,)).fetchone()[0]


def assert_each_job_done_at_most_once(conn: psycopg.Connection, action: Action, ids: list[int]):
    if action == Action.RETRY:
        # Procrastinate's retry adds one attempt: 1 (failed) -> 2 (retried once).
        attempts = dict(
            conn.execute(
                "SELECT attempts, count(*) FROM procrastinate_jobs WHERE id = ANY(%s) GROUP BY 1",
                (ids,),
            ).fetchall()
        )
        assert set(attempts) <= {1, 2}, attempts
        untouched = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(%s)"
            " AND (status = 'failed') <> (attempts = 1)",
            (ids,),
        ).fetchone()[0]
        assert untouched == 0, "a job is failed with 2 attempts or todo with 1"
    else:
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT job_id FROM jobdash_deleted_jobs"
            " WHERE job_id = ANY(%s) GROUP BY job_id HAVING count(*) > 1) d",
            (ids,),
        ).fetchone()[0]
        assert twice == 0, "a job was archived twice"
        both = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs j JOIN jobdash_deleted_jobs d"
            " ON d.job_id = j.id AND d.restored_at IS NULL WHERE j.id = ANY(%s)",
            (ids,),
        ).fetchone()[0]
        assert both == 0, "a job is both present and archived"
        # Nothing lost: every job is either still there or in the archive with its errors.
        present = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(%s)", (ids,)
        ).fetchone()[0]
        assert present + changed(conn, action, ids) == len(ids)
        archived_errors = conn.execute(
            "SELECT coalesce(sum(jsonb_array_length(errors)), 0) FROM jobdash_deleted_jobs"
        ).fetchone()[0]
        live_errors = conn.execute(
            "SELECT count(*) FROM jobdash_job_errors WHERE job_id = ANY(%s)", (ids,)
        ).fetchone()[0]
        assert archived_errors + live_errors == len(ids)


@pytest.mark.parametrize("action", [Action.RETRY, Action.DELETE])
def test_killed_inside_a_batch_leaves_it_untouched_and_resumes(database_url, conn, action):
    ids = make_failed_jobs(conn, JOBS)
    with psycopg.connect(database_url) as blocker:
        # Holds the first job of the second batch: the run locks the batch's rows in id
        # order, so it waits there, inside the batch's transaction.
        blocker.execute("SELECT 1 FROM procrastinate_jobs WHERE id = %s FOR UPDATE", (ids[BATCH],))
        run = start(action, database_url)
        wait_for(lambda: waiting_on_lock(conn), 30, "the run to wait inside its second batch")
        assert conn.execute(TERMINATE_JOBDASH).fetchone()[0] >= 1
        blocker.rollback()
    finish(run)
    assert run.error is not None and run.result is None, run.error

    # The first batch is done, the interrupted one untouched, and the audit says so.
    assert audit_done(conn, action) == (1, BATCH)
    assert changed(conn, action, ids) == BATCH
    assert_each_job_done_at_most_once(conn, action, ids)

    resumed = finish(start(action, database_url))
    assert resumed.error is None, resumed.error
    assert resumed.result is not None and resumed.result.done_count == JOBS - BATCH
    assert resumed.result.skipped_count == 0
    assert changed(conn, action, ids) == JOBS
    rows, done = audit_done(conn, action)
    assert done == JOBS and rows == 1 + 3  # one row per committed batch
    assert_each_job_done_at_most_once(conn, action, ids)


@pytest.mark.parametrize("action", [Action.RETRY, Action.DELETE])
def test_killed_at_random_moments_until_done_nothing_twice(database_url, conn, action):
    ids = make_failed_jobs(conn, JOBS)
    rng = random.Random(15)
    kills = 0
    attempts = 0
    while True:
        attempts += 1
        assert attempts <= 60, "the action never got through"
        run = start(action, database_url)
        stop = threading.Event()

        def kill_soon(delay: float, stop: threading.Event = stop) -> None:
            nonlocal kills
            if not stop.wait(delay):
                with psycopg.connect(database_url, autocommit=True) as killer:
                    kills += killer.execute(TERMINATE_JOBDASH).fetchone()[0]

        killer = threading.Thread(target=kill_soon, args=(rng.uniform(0.0, 0.4),))
        killer.start()
        finish(run)
        stop.set()
        killer.join()
        if run.error is None:
            break
        assert_each_job_done_at_most_once(conn, action, ids)
        rows, done = audit_done(conn, action)
        assert done == changed(conn, action, ids)
    assert kills >= 1
    assert changed(conn, action, ids) == JOBS
    rows, done = audit_done(conn, action)
    assert done == JOBS
    assert_each_job_done_at_most_once(conn, action, ids)
