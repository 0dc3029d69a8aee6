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
from concurrent.futures import ThreadPoolExecutor

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
KILLS = 3  # runs killed before one is left to finish
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


def batches_left(conn: psycopg.Connection, action: Action, ids: list[int]) -> int:
    return -(-(len(ids) - changed(conn, action, ids)) // BATCH)


def kill_during_run(
    url: str, action: Action, committed: int, after: int, offset: float, done: threading.Event
) -> int:
    """Terminates the run's connection `offset` s after its `after`-th batch commits (counted
    from `committed` audit rows), retrying until a backend is hit or the run ends. Driven by
    the run's progress, not the clock, so the kill lands inside the run however fast the
    machine is; the number of backends terminated."""
    with psycopg.connect(url, autocommit=True) as watcher:
        while audit_done(watcher, action)[0] < committed + after:
            if done.wait(0.002):
                return 0
        if done.wait(offset):
            return 0
        while not done.is_set():
            killed = watcher.execute(TERMINATE_JOBDASH).fetchone()[0]
            if killed:
                return killed
            done.wait(0.002)
    return 0


@pytest.mark.parametrize("action", [Action.RETRY, Action.DELETE])
def test_killed_at_random_moments_until_done_nothing_twice(database_url, conn, action):
    ids = make_failed_jobs(conn, JOBS)
    rng = random.Random(15)
    kills = 0
    for _attempt in range(20):
        left = batches_left(conn, action, ids)
        committed = audit_done(conn, action)[0]
        # Before the first and the following batches, or inside one; then a run left alone.
        after, offset = rng.randrange(left), rng.uniform(0.0, 0.005)
        done = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            killed = None
            if kills < KILLS:
                killed = pool.submit(
                    kill_during_run, database_url, action, committed, after, offset, done
                )
            run = finish(start(action, database_url))
            done.set()
            kills += bool(killed and killed.result())
        if run.error is None:
            break
        assert_each_job_done_at_most_once(conn, action, ids)
        rows, done_count = audit_done(conn, action)
        assert done_count == changed(conn, action, ids)
    else:
        raise AssertionError("the action never got through")
    assert kills >= 1
    assert changed(conn, action, ids) == JOBS
    rows, done_count = audit_done(conn, action)
    assert done_count == JOBS
    assert_each_job_done_at_most_once(conn, action, ids)
