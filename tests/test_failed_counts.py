"""The failed-count ledger stays exact: every way a job enters or leaves `failed`, bulk
statements, compaction (explicit and from the trigger), recount, and concurrent transactions."""

from __future__ import annotations

import random

import psycopg
import pytest

from jobdash.app.actions.jobs import delete_jobs, restore_jobs, retry_jobs
from jobdash.app.read.dashboard import load_failed_jobs, load_queue_stats
from jobdash.jobs.maintenance.failed_counts import compact_failed_counts, recount_failed
from tests.actions_helpers import as_operator, make_failed_jobs
from tests.loader_helpers import defer, set_status
from tests.migrate_helpers import failed_list_mismatches


def true_counts(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute(
        "select queue_name, count(*) from procrastinate_jobs where status = 'failed' group by 1"
    ).fetchall()
    return {queue: int(n) for queue, n in rows}


def ledger_counts(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute(
        "select queue_name, sum(delta) from jobdash_failed_counts group by 1 having sum(delta) <> 0"
    ).fetchall()
    return {queue: int(n) for queue, n in rows}


def ledger_rows(conn: psycopg.Connection) -> int:
    row = conn.execute("select count(*) from jobdash_failed_counts").fetchone()
    assert row is not None
    return int(row[0])


def loaded_counts(conn: psycopg.Connection) -> tuple[int, dict[str, int]]:
    """What the dashboard shows: the failed total and the per-queue failed column."""
    per_queue = {q.name: q.failed for q in load_queue_stats(conn).queues if q.failed}
    return load_failed_jobs(conn, limit=1).total_failed_jobs, per_queue


def assert_exact(conn: psycopg.Connection) -> None:
    truth = true_counts(conn)
    assert ledger_counts(conn) == truth
    assert loaded_counts(conn) == (sum(truth.values()), truth)
    assert failed_list_mismatches(conn) == {}  # and the failed list (008) with them


def test_each_transition_into_and_out_of_failed(conn: psycopg.Connection) -> None:
    job = defer(conn, queue="a")
    assert_exact(conn)
    set_status(conn, job, "doing")
    set_status(conn, job, "failed")
    assert loaded_counts(conn) == (1, {"a": 1})
    # Updating a failed job without changing its status adds no ledger row.
    rows = ledger_rows(conn)
    conn.execute("update procrastinate_jobs set priority = 5 where id = %s", (job,))
    assert ledger_rows(conn) == rows
    # Retry (failed → todo) through Procrastinate's own procedure.
    conn.execute("select procrastinate_retry_job_v2(%s, now(), 0, null, null)", (job,))
    assert loaded_counts(conn) == (0, {})
    set_status(conn, job, "doing")
    set_status(conn, job, "failed")
    assert_exact(conn)
    conn.execute("delete from procrastinate_jobs where id = %s", (job,))
    assert loaded_counts(conn) == (0, {})
    assert_exact(conn)


def test_jobs_inserted_as_failed_count(conn: psycopg.Connection) -> None:
    conn.execute(
        "insert into procrastinate_jobs (queue_name, task_name, args, status) "
        "select q, 't', '{}', 'failed' from unnest(array['x', 'x', 'y']) q"
    )
    assert loaded_counts(conn) == (3, {"x": 2, "y": 1})


def test_dashboard_actions_keep_counts_exact(conn: psycopg.Connection) -> None:
    emails = make_failed_jobs(conn, 4, queue="emails")
    billing = make_failed_jobs(conn, 3, queue="billing")
    assert loaded_counts(conn) == (7, {"emails": 4, "billing": 3})
    assert retry_jobs(conn, emails[:2], as_operator("tester")).done_count == 2
    assert loaded_counts(conn) == (5, {"emails": 2, "billing": 3})
    assert delete_jobs(conn, billing, as_operator("tester")).done_count == 3
    assert loaded_counts(conn) == (2, {"emails": 2})
    # Restore re-inserts the archived rows as they were (status failed): they count again.
    assert restore_jobs(conn, billing, as_operator("tester")).done_count == 3
    assert loaded_counts(conn) == (5, {"emails": 2, "billing": 3})
    assert_exact(conn)


def test_a_bulk_statement_counts_every_moved_row(conn: psycopg.Connection) -> None:
    # Row-level triggers: one ledger row per job moved into or out of `failed` (compaction
    # folds them every 1000th row and in the maintenance task); rows that stay put add none.
    conn.execute(
        "insert into procrastinate_jobs (queue_name, task_name, args, status) "
        "select case when g % 3 = 0 then 'a' else 'b' end, 't', '{}', 'doing' "
        "from generate_series(1, 300) g"
    )
    before = ledger_rows(conn)
    conn.execute("update procrastinate_jobs set status = 'failed'")
    assert ledger_rows(conn) == before + 300
    assert loaded_counts(conn) == (300, {"a": 100, "b": 200})
    conn.execute("update procrastinate_jobs set priority = 5")  # no move: no row
    assert ledger_rows(conn) == before + 300
    conn.execute("update procrastinate_jobs set status = 'todo' where queue_name = 'a'")
    assert ledger_rows(conn) == before + 400
    conn.execute("delete from procrastinate_jobs where id % 2 = 0")
    assert_exact(conn)


def test_compaction_collapses_to_one_row_per_queue(conn: psycopg.Connection) -> None:
    a = [defer(conn, queue="a") for _ in range(3)]
    b = defer(conn, queue="b")
    for job in [*a, b]:
        set_status(conn, job, "doing")
        set_status(conn, job, "failed")
    conn.execute("select procrastinate_retry_job_v2(%s, now(), 0, null, null)", (b,))
    assert ledger_rows(conn) == 5
    assert compact_failed_counts(conn) == 5
    # Queue b nets to zero: no row left for it.
    assert conn.execute("select queue_name, delta from jobdash_failed_counts").fetchall() == [
        ("a", 3)
    ]
    assert_exact(conn)
    assert compact_failed_counts(conn) == 1  # idempotent: the one row is rewritten as is
    assert_exact(conn)


def test_trigger_compacts_every_thousandth_row(conn: psycopg.Connection) -> None:
    # Jump the ledger's id sequence to just before a multiple of 1000.
    conn.execute("select setval(pg_get_serial_sequence('jobdash_failed_counts', 'id'), 997)")
    jobs = [defer(conn, queue="q") for _ in range(4)]
    for job in jobs:
        set_status(conn, job, "doing")
        set_status(conn, job, "failed")
    # Rows 998, 999, 1000 (this one compacts all three into one), then 1002.
    assert ledger_rows(conn) == 2
    assert_exact(conn)


def test_truncate_and_recount(conn: psycopg.Connection) -> None:
    make_failed_jobs(conn, 5, queue="a")
    # Writes with triggers off leave the ledger behind; recount repairs it.
    conn.execute("set session_replication_role = replica")
    conn.execute(
        "update procrastinate_jobs set status = 'succeeded' where id in "
        "(select id from procrastinate_jobs order by id limit 2)"
    )
    conn.execute("set session_replication_role = origin")
    assert ledger_counts(conn) == {"a": 5}
    assert recount_failed(conn) == 3
    assert_exact(conn)
    conn.execute("truncate procrastinate_jobs cascade")
    assert ledger_rows(conn) == 0
    assert loaded_counts(conn) == (0, {})


def test_two_concurrent_transactions_and_a_compaction(
    conn: psycopg.Connection, database_url: str
) -> None:
    jobs = [defer(conn, queue=q) for q in ("a", "a", "b", "b")]
    for job in jobs:
        set_status(conn, job, "doing")
    with psycopg.connect(database_url) as one, psycopg.connect(database_url) as two:
        one.execute("update procrastinate_jobs set status = 'failed' where id = %s", (jobs[0],))
        two.execute(
            "update procrastinate_jobs set status = 'failed' where id = any(%s)", (jobs[1:],)
        )
        # Neither has committed: invisible to readers, and compaction leaves their rows alone.
        assert loaded_counts(conn) == (0, {})
        compact_failed_counts(conn)
        one.commit()
        assert loaded_counts(conn) == (1, {"a": 1})
        # Compaction inside a writer's open transaction, then another compaction outside.
        assert compact_failed_counts(two) >= 1
        assert compact_failed_counts(conn) == 0  # skipped: `two` holds the compaction lock
        two.commit()
    assert loaded_counts(conn) == (4, {"a": 2, "b": 2})
    compact_failed_counts(conn)
    assert_exact(conn)
    assert ledger_rows(conn) == 2


def test_rolled_back_transaction_leaves_no_trace(
    conn: psycopg.Connection, database_url: str
) -> None:
    job = defer(conn, queue="a")
    set_status(conn, job, "doing")
    with psycopg.connect(database_url) as other:
        other.execute("update procrastinate_jobs set status = 'failed' where id = %s", (job,))
        other.rollback()
    assert_exact(conn)
    assert ledger_rows(conn) == 0


def test_random_mix_of_operations_stays_exact(conn: psycopg.Connection) -> None:
    rng = random.Random(20240503)
    queues = ["a", "b", "c"]
    for step in range(80):
        op = rng.choice(["defer", "fail", "bulk_fail", "retry", "succeed", "delete", "compact"])
        queue = rng.choice(queues)
        if op == "defer":
            conn.execute(
                "insert into procrastinate_jobs (queue_name, task_name, args) "
                "select %s, 't', '{}' from generate_series(1, %s)",
                (queue, rng.randint(1, 5)),
            )
        elif op in ("fail", "bulk_fail"):
            limit = 1 if op == "fail" else rng.randint(2, 6)
            conn.execute(
                "update procrastinate_jobs set status = 'failed' where id in (select id from "
                "procrastinate_jobs where status in ('todo', 'doing') and queue_name = %s "
                "order by random() limit %s)",
                (queue, limit),
            )
        elif op == "retry":
            conn.execute(
                "update procrastinate_jobs set status = 'todo' where id in (select id from "
                "procrastinate_jobs where status = 'failed' order by random() limit %s)",
                (rng.randint(1, 4),),
            )
        elif op == "succeed":
            conn.execute(
                "update procrastinate_jobs set status = 'succeeded' where id in (select id "
                "from procrastinate_jobs where status = 'todo' order by random() limit 2)"
            )
        elif op == "delete":
            conn.execute(
                "delete from procrastinate_jobs where id in (select id from procrastinate_jobs "
                "where status in ('failed', 'succeeded', 'todo') order by random() limit %s)",
                (rng.randint(1, 3),),
            )
        else:
            compact_failed_counts(conn)
        assert ledger_counts(conn) == true_counts(conn), f"after step {step} ({op})"
        assert failed_list_mismatches(conn) == {}, f"after step {step} ({op})"
    assert_exact(conn)


def test_recount_refuses_repeatable_read(database_url: str) -> None:
    with psycopg.connect(database_url) as other:
        other.execute("set transaction isolation level repeatable read")
        with pytest.raises(psycopg.errors.RaiseException, match="READ COMMITTED"):
            other.execute("select jobdash_recount_failed()")


def test_maintenance_task_compacts_the_ledger(conn: psycopg.Connection, database_url: str) -> None:
    from jobdash.jobs.maintenance.task import maintain

    for queue in ("a", "a", "b"):
        make_failed_jobs(conn, 2, queue=queue)
    assert ledger_rows(conn) == 6  # one per job
    maintain(database_url)
    assert sorted(conn.execute("select queue_name, delta from jobdash_failed_counts")) == [
        ("a", 4),
        ("b", 2),
    ]
