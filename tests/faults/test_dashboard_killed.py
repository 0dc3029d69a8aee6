"""kill -9 of a dashboard process in the middle of "delete all matching".

The run is the Failed jobs page's own (tests/faults/bulk_child.py starts a BulkRun as
app/ui/operations.start_bulk does) in a process the test SIGKILLs: once while it waits inside
a batch (a row lock of the test holds it there), then at random moments, rerunning it after
each kill until it completes. Afterwards archive and deletion agree: nothing archived twice,
no job both present and archived, and restoring every job gives back exactly what was there.
"""

from __future__ import annotations

import random
import signal
import sys
import time

import psycopg

from jobdash.app.actions import jobs as actions
from jobdash.core.auth.identity import Action, Identity, Role
from tests.actions_helpers import make_failed_jobs
from tests.faults.helpers import Process, wait_for
from tests.faults.test_bulk_terminated import BATCH, audit_done, waiting_on_lock

JOBS = 3500
KILLS = 3  # runs killed before one is left to finish

# Everything stored about each job: its row, events and recorded errors.
SNAPSHOT = """
SELECT j.id, to_jsonb(j),
       coalesce((SELECT jsonb_agg(to_jsonb(e) ORDER BY e.id) FROM procrastinate_events e
                 WHERE e.job_id = j.id), '[]'),
       coalesce((SELECT jsonb_agg(to_jsonb(r) ORDER BY r.id) FROM jobdash_job_errors r
                 WHERE r.job_id = j.id), '[]')
FROM procrastinate_jobs j WHERE j.id = ANY(%s) ORDER BY j.id
"""


def snapshot(conn: psycopg.Connection, ids: list[int]) -> list[tuple]:
    return conn.execute(SNAPSHOT, (ids,)).fetchall()


def child(url: str, folder, name: str) -> Process:
    return Process([sys.executable, "-m", "tests.faults.bulk_child", url], folder, name)


def kill9(process: Process) -> None:
    process.popen.send_signal(signal.SIGKILL)
    assert process.popen.wait(timeout=10) == -signal.SIGKILL


def no_backend_left(conn: psycopg.Connection) -> bool:
    """The killed process's connection has ended on the server (its transaction rolled back)."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name LIKE 'jobdash%%'"
    ).fetchone()
    return row[0] == 0


def assert_consistent(conn: psycopg.Connection, ids: list[int]) -> int:
    """Archive and deletion agree; the number of jobs deleted."""
    twice = conn.execute(
        "SELECT count(*) FROM (SELECT job_id FROM jobdash_deleted_jobs WHERE job_id = ANY(%s)"
        " GROUP BY job_id HAVING count(*) > 1) d",
        (ids,),
    ).fetchone()[0]
    assert twice == 0, "a job was archived twice"
    present, archived = conn.execute(
        "SELECT (SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(%(ids)s)),"
        " (SELECT count(*) FROM jobdash_deleted_jobs WHERE job_id = ANY(%(ids)s)"
        "  AND restored_at IS NULL)",
        {"ids": ids},
    ).fetchone()
    assert present + archived == len(ids), "a job is both present and archived, or lost"
    assert audit_done(conn, Action.DELETE)[1] == archived, "the audit log disagrees"
    return archived


def test_killed_dashboard_leaves_archive_and_deletion_consistent(database_url, conn, tmp_path):
    ids = make_failed_jobs(conn, JOBS)
    before = snapshot(conn, ids)

    # 1. Killed inside its second batch.
    with psycopg.connect(database_url) as blocker:
        blocker.execute("SELECT 1 FROM procrastinate_jobs WHERE id = %s FOR UPDATE", (ids[BATCH],))
        process = child(database_url, tmp_path, "first")
        wait_for(lambda: waiting_on_lock(conn), 30, "the run to wait inside its second batch")
        kill9(process)
        blocker.rollback()
    wait_for(lambda: no_backend_left(conn), 30, "the killed process's connection to end")
    assert "batch done 1000" in process.output()
    assert assert_consistent(conn, ids) == BATCH

    # 2. Killed at random moments, run again after each kill, until it completes. The moment
    # is counted from the run's progress (committed batches, then a few ms), not the clock,
    # so the kill lands inside the run however fast the machine is.
    rng = random.Random(15)
    kills = 0
    for attempt in range(20):
        left = -(-(JOBS - assert_consistent(conn, ids)) // BATCH)
        committed = audit_done(conn, Action.DELETE)[0]
        process = child(database_url, tmp_path, f"run{attempt}")
        if kills == KILLS or left == 0:
            break
        after, offset = rng.randrange(left), rng.uniform(0.0, 0.005)
        wait_for(lambda p=process: not no_backend_left(conn) or not p.alive(), 30, "a connection")
        wait_for(
            lambda p=process, batches=committed + after: (
                audit_done(conn, Action.DELETE)[0] >= batches or not p.alive()
            ),
            60,
            f"batch {after} of the run",
            every=0.002,
        )
        deadline = time.monotonic() + offset
        while process.alive() and time.monotonic() < deadline:
            pass  # the kill lands wherever the run is by then
        if not process.alive():
            break
        kill9(process)
        kills += 1
        wait_for(lambda: no_backend_left(conn), 30, "the killed process's connection to end")
        assert_consistent(conn, ids)
    assert process.popen.wait(timeout=60) == 0, process.output()
    assert kills >= 2
    assert assert_consistent(conn, ids) == JOBS

    # Every deleted job comes back exactly as it was.
    restored = actions.restore_jobs(conn, ids, Identity("tester", Role.OPERATOR, "cli"))
    assert restored.done_count == JOBS and not restored.skipped
    assert snapshot(conn, ids) == before
