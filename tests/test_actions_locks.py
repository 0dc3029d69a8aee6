"""Retry makes progress whatever the queueing locks (issue 8 item 9, issue 13).

Procrastinate allows one *todo* job per queueing lock (a unique partial index) while any
number of failed jobs may share one: retrying them all at once used to stop the run for good.
"""

from __future__ import annotations

import re
import threading
import time

import psycopg

from jobdash.app.actions.jobs import retry_all_matching, retry_jobs
from jobdash.app.cli.main import main
from jobdash.app.read.failed_jobs import FailedJobFilter
from tests.actions_helpers import as_operator, make_failed_jobs

JOBS = 2_300
SHARED_LOCKS = 400  # jobs i and i + 400, i + 800, ... share a lock: same batch and later ones
HELD_BY_TODO = 60  # of those locks, a todo job already waits with the first 60


def lock_of(i: int) -> str | None:
    if i < 1_600:
        return f"customer-{i % SHARED_LOCKS}"
    return None if i % 2 else f"unique-{i}"


def make_queue(conn) -> tuple[list[int], dict[str, int]]:
    ids = make_failed_jobs(conn, 0, queue="q", queueing_locks=[lock_of(i) for i in range(JOBS)])
    holders = dict(
        conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock) "
            "SELECT 'q', 'app.tasks.work', 'customer-' || g FROM generate_series(0, %s) g "
            "RETURNING queueing_lock, id",
            (HELD_BY_TODO - 1,),
        ).fetchall()
    )
    return ids, holders


def expected_outcome(ids: list[int], holders: dict[str, int]) -> tuple[set[int], dict[int, int]]:
    """The jobs retried (lowest id of each lock not held) and, for the others, the holder."""
    retried: set[int] = set()
    holder_of_skipped: dict[int, int] = {}
    claimed = dict(holders)
    for i, job_id in enumerate(ids):
        lock = lock_of(i)
        if lock is not None and lock in claimed:
            holder_of_skipped[job_id] = claimed[lock]
        else:
            retried.add(job_id)
            if lock is not None:
                claimed[lock] = job_id
    return retried, holder_of_skipped


def test_bulk_retry_retries_first_of_each_lock_and_names_the_holder(conn):
    ids, holders = make_queue(conn)
    retried, holder_of_skipped = expected_outcome(ids, holders)
    result = retry_all_matching(
        conn, FailedJobFilter(queue="q"), as_operator("ops"), batch_size=1000
    )
    assert not result.stopped
    assert set(result.done) == retried
    assert result.done_count + result.skipped_count == JOBS == result.total
    for job_id, holder in holder_of_skipped.items():
        reason = result.skipped[job_id]
        match = re.fullmatch(
            r"another job with queueing lock '(.+)' is waiting \(job (\d+)\)", reason
        )
        assert match, reason
        assert int(match[2]) == holder
    assert result.skipped_by_reason() == {
        "another job with its queueing lock is waiting": len(holder_of_skipped)
    }
    # One todo job per lock, as Procrastinate's unique index demands; the rest still failed.
    statuses = dict(
        conn.execute(
            "SELECT id, status::text FROM procrastinate_jobs WHERE id = ANY(%s)", (ids,)
        ).fetchall()
    )
    assert {j for j, s in statuses.items() if s == "todo"} == retried
    assert {j for j, s in statuses.items() if s == "failed"} == set(holder_of_skipped)
    audited = conn.execute(
        "SELECT sum(done), sum(skipped), count(*) FROM jobdash_audit_log WHERE action = 'retry'"
    ).fetchone()
    assert audited == (len(retried), len(holder_of_skipped), 3)


def test_cli_retry_all_failed_processes_every_job(database_url, conn, capsys):
    ids, holders = make_queue(conn)
    retried, holder_of_skipped = expected_outcome(ids, holders)
    code = main(["retry", "--all-failed", "--queue", "q", "--database-url", database_url])
    out = capsys.readouterr().out
    assert code == 1  # some were skipped
    assert (
        f"Retried {len(retried):,} jobs; skipped {len(holder_of_skipped):,} "
        f"(another job with its queueing lock is waiting: {len(holder_of_skipped):,})"
    ) in out
    # Run again: nothing failed is retryable until the holders ran; no error, no progress lost.
    assert main(["retry", "--all-failed", "--queue", "q", "--database-url", database_url]) == 1
    assert f"Retried 0 jobs; skipped {len(holder_of_skipped):,}" in capsys.readouterr().out


def test_retry_by_ids_in_one_call_with_a_shared_lock(conn):
    first, second = make_failed_jobs(conn, 0, queueing_locks=["invoice-7", "invoice-7"])
    result = retry_jobs(conn, [second, first], as_operator("ops"))
    assert result.done == (first,)
    assert result.skipped == {
        second: f"another job with queueing lock 'invoice-7' is waiting (job {first})"
    }
    again = retry_jobs(conn, [second], as_operator("ops"))
    assert again.skipped == {
        second: f"another job with queueing lock 'invoice-7' is waiting (job {first})"
    }


def wait_until_blocked(conn, pid: int, timeout_s: float = 20) -> None:
    """Poll until backend `pid` waits on a lock (the retry waiting for the deferring one)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
        if row and row[0] == "Lock":
            return
        time.sleep(0.01)
    raise AssertionError("the retry never waited for the deferring transaction")


def test_a_job_deferred_meanwhile_with_the_lock_becomes_a_skip_not_an_error(database_url, conn):
    """The pre-check cannot see a lock taken by a transaction still open: Procrastinate's
    retry then hits the unique index; that one job is skipped, the others retried."""
    before, contested, after = make_failed_jobs(conn, 0, queueing_locks=["a", "contested", None])
    with (
        psycopg.connect(database_url) as deferring,
        psycopg.connect(database_url, autocommit=True) as operator,
    ):
        new_job = deferring.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock) "
            "VALUES ('default', 't', 'contested') RETURNING id"
        ).fetchone()[0]
        results = []
        thread = threading.Thread(
            target=lambda: results.append(
                retry_jobs(operator, [before, contested, after], as_operator("x"))
            )
        )
        thread.start()
        wait_until_blocked(conn, operator.info.backend_pid)
        deferring.commit()
        thread.join(timeout=30)
    [result] = results
    assert result.done == (before, after)
    assert result.skipped == {
        contested: f"another job with queueing lock 'contested' is waiting (job {new_job})"
    }
    [audit] = conn.execute("SELECT done, skipped FROM jobdash_audit_log").fetchall()
    assert audit == (2, 1)


def test_concurrent_bulk_retries_retry_each_job_once(database_url, conn):
    locks = [f"lock-{i % 150}" if i % 3 else None for i in range(1_200)]
    ids = make_failed_jobs(conn, 0, queue="q", queueing_locks=locks)
    results, errors = [], []
    barrier = threading.Barrier(3)

    def operator() -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as own:
                barrier.wait(timeout=10)
                results.append(
                    retry_all_matching(
                        own, FailedJobFilter(queue="q"), as_operator("ops"), batch_size=250
                    )
                )
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=operator) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    done = [job_id for r in results for job_id in r.done]
    assert len(done) == len(set(done))  # nobody retried a job twice
    expected = {job_id for job_id, lock in zip(ids, locks, strict=True) if lock is None}
    expected |= {
        min(j for j, lk in zip(ids, locks, strict=True) if lk == lock)
        for lock in set(locks) - {None}
    }
    assert set(done) == expected
    todo_per_lock = conn.execute(
        "SELECT max(n) FROM (SELECT count(*) n FROM procrastinate_jobs "
        "WHERE status = 'todo' AND queueing_lock IS NOT NULL GROUP BY queueing_lock) c"
    ).fetchone()[0]
    assert todo_per_lock == 1
    assert conn.execute(
        "SELECT sum(done) FROM jobdash_audit_log WHERE action = 'retry'"
    ).fetchone()[0] == len(expected)
