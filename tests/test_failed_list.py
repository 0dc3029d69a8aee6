"""The failed list (jobdash_failed_jobs, migrations/008_failed_jobs.sql): each way a job enters
or leaves `failed` keeps it exact, with the time of the last move into `failed`; a restored
job keeps its time; recount rebuilds it; the readers never show a row left behind; our
writes inside Procrastinate's transactions (these and the deleted-job events') give way
instead of failing them."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psycopg
import pytest

from jobdash.app.actions.jobs import delete_jobs, restore_jobs, retry_jobs
from jobdash.app.read import failed_jobs, jobs
from jobdash.app.read.failed_jobs import (
    FailedJobFilter,
    count_failed_jobs,
    failed_ids_batch,
    failed_queues_and_tasks,
    list_failed_jobs,
)
from jobdash.app.read.job_filter import JobFilter
from jobdash.app.read.jobs import count_jobs, load_jobs_page
from jobdash.jobs.maintenance.failed_counts import recount_failed
from tests.actions_helpers import as_operator, make_failed_jobs
from tests.hostile import HOSTILE
from tests.loader_helpers import defer, set_status
from tests.migrate_helpers import failed_list_mismatches


def listed(conn: psycopg.Connection) -> dict[int, tuple[str, str, datetime]]:
    rows = conn.execute("select job_id, queue_name, task_name, failed_at from jobdash_failed_jobs")
    return {job: (queue, task, at) for job, queue, task, at in rows}


def fail(conn: psycopg.Connection, job: int) -> datetime:
    """doing → failed through Procrastinate's finish; the transaction's time."""
    set_status(conn, job, "doing")
    with conn.transaction():
        conn.execute("select procrastinate_finish_job_v1(%s, 'failed', false)", (job,))
        row = conn.execute("select now()").fetchone()
    assert row is not None
    return row[0]


def test_into_failed_and_out_again(conn: psycopg.Connection) -> None:
    job = defer(conn, queue="a", task="t.one")
    assert listed(conn) == {}
    at = fail(conn, job)
    assert listed(conn) == {job: ("a", "t.one", at)}
    event = conn.execute(
        "select at from procrastinate_events where job_id = %s and type = 'failed'", (job,)
    ).fetchone()
    assert event == (at,)  # the time the failed-jobs page used to read from the events
    # Untouched by a change that is not a move (the WHEN clauses let it through only for
    # status, queue or task changes).
    conn.execute("update procrastinate_jobs set priority = 3 where id = %s", (job,))
    assert listed(conn) == {job: ("a", "t.one", at)}
    # Retried out of failed by Procrastinate's own procedure; failed again later.
    conn.execute("select procrastinate_retry_job_v2(%s, now(), null, null, null)", (job,))
    assert listed(conn) == {}
    again = fail(conn, job)
    assert again > at and listed(conn) == {job: ("a", "t.one", again)}
    conn.execute("delete from procrastinate_jobs where id = %s", (job,))
    assert listed(conn) == {}


def test_queue_or_task_change_of_a_failed_job_keeps_its_time(conn: psycopg.Connection) -> None:
    job = defer(conn, queue="a", task="t.one")
    at = fail(conn, job)
    conn.execute("update procrastinate_jobs set queue_name = 'b' where id = %s", (job,))
    conn.execute("update procrastinate_jobs set task_name = 't.two' where id = %s", (job,))
    assert listed(conn) == {job: ("b", "t.two", at)}
    assert count_failed_jobs(conn, FailedJobFilter(queue="b", task="t.two")) == 1
    assert count_failed_jobs(conn, FailedJobFilter(queue="a")) == 0


def test_inserted_failed_and_bulk_statements(conn: psycopg.Connection) -> None:
    conn.execute(
        "insert into procrastinate_jobs (queue_name, task_name, args, status) "
        "select 'q' || (g % 3), 't', '{}', case when g % 2 = 0 then 'failed' else 'doing' end"
        "::procrastinate_job_status from generate_series(1, 200) g"
    )
    assert len(listed(conn)) == 100
    conn.execute("update procrastinate_jobs set status = 'failed' where status = 'doing'")
    conn.execute("update procrastinate_jobs set queue_name = 'moved' where id % 5 = 0")
    conn.execute("update procrastinate_jobs set status = 'todo' where id % 7 = 0")
    conn.execute("delete from procrastinate_jobs where id % 11 = 0")
    assert failed_list_mismatches(conn) == {}
    conn.execute("truncate procrastinate_jobs cascade")
    assert listed(conn) == {}


@pytest.mark.parametrize(
    "name",
    [*HOSTILE["sql_and_shell"], *HOSTILE["html_and_script"], *HOSTILE["unicode"], "x" * 128],
)
def test_hostile_queue_and_task_names(conn: psycopg.Connection, name: str) -> None:
    # Procrastinate notifies on a channel named after the queue (63 bytes at most).
    queue = name.encode()[:36].decode(errors="ignore")
    job = defer(conn, queue=queue, task=name)
    at = fail(conn, job)
    assert listed(conn) == {job: (queue, name, at)}
    assert [r["id"] for r in list_failed_jobs(conn, FailedJobFilter(queue=queue)).rows] == [job]
    assert [r["id"] for r in list_failed_jobs(conn, FailedJobFilter(task=name)).rows] == [job]
    assert failed_queues_and_tasks(conn) == [(queue, name, 1)]
    conn.execute("update procrastinate_jobs set queue_name = %s where id = %s", (queue[::-1], job))
    assert listed(conn) == {job: (queue[::-1], name, at)}
    conn.execute("select procrastinate_retry_job_v2(%s, now(), null, null, null)", (job,))
    assert listed(conn) == {}


def test_a_restored_job_keeps_its_failure_time(conn: psycopg.Connection) -> None:
    ids = make_failed_jobs(conn, 3, queue="emails")
    conn.execute(
        "update jobdash_failed_jobs set failed_at = now() - job_id * interval '1 day'"
        " where job_id = any(%s)",
        (ids,),
    )
    before = listed(conn)
    operator = as_operator()
    assert delete_jobs(conn, ids[:2], operator).done_count == 2
    assert set(listed(conn)) == {ids[2]}
    assert restore_jobs(conn, ids[:2], operator).done_count == 2
    assert listed(conn) == before
    # An archive made before 008 has no failure time: the archived events give it.
    assert delete_jobs(conn, [ids[0]], operator).done_count == 1
    conn.execute("update jobdash_deleted_jobs set failed_at = null where job_id = %s", (ids[0],))
    assert restore_jobs(conn, [ids[0]], operator).done_count == 1
    event = conn.execute(
        "select max(at) from procrastinate_events where job_id = %s and type = 'failed'",
        (ids[0],),
    ).fetchone()
    assert listed(conn)[ids[0]][2] == event[0]


def test_recount_rebuilds_the_list(conn: psycopg.Connection) -> None:
    ids = make_failed_jobs(conn, 6, queue="a")
    kept = listed(conn)
    conn.execute("set session_replication_role = replica")
    try:
        conn.execute("update procrastinate_jobs set status = 'succeeded' where id = %s", (ids[0],))
        conn.execute("update procrastinate_jobs set queue_name = 'b' where id = %s", (ids[1],))
        conn.execute("delete from jobdash_failed_jobs where job_id = %s", (ids[2],))
        late = defer(conn, queue="c")
        conn.execute("update procrastinate_jobs set status = 'failed' where id = %s", (late,))
        conn.execute(
            "insert into procrastinate_events (job_id, type, at)"
            " values (%s, 'failed', now() - interval '3 hours')",
            (late,),
        )
    finally:
        conn.execute("set session_replication_role = origin")
    assert recount_failed(conn) == 6
    assert failed_list_mismatches(conn) == {}
    now_listed = listed(conn)
    assert now_listed[ids[3]] == kept[ids[3]]  # a listed job keeps its time
    assert now_listed[ids[2]][2] == kept[ids[2]][2]  # found again from its failed event
    assert now_listed[late][2] < kept[ids[3]][2] - timedelta(hours=2)


def test_a_row_left_behind_never_shows(conn: psycopg.Connection) -> None:
    ids = make_failed_jobs(conn, 3, queue="a")
    conn.execute("set session_replication_role = replica")
    try:
        conn.execute("update procrastinate_jobs set status = 'todo' where id = %s", (ids[0],))
    finally:
        conn.execute("set session_replication_role = origin")
    assert ids[0] in listed(conn)
    everyone = FailedJobFilter()
    assert [r["id"] for r in list_failed_jobs(conn, everyone).rows] == [ids[2], ids[1]]
    # Counted from the list when a time bounds it (the ledger missed the change too).
    since = FailedJobFilter(failed_since=listed(conn)[ids[0]][2] - timedelta(days=1))
    assert count_failed_jobs(conn, since) == 2
    assert failed_ids_batch(conn, everyone, 0, ids[-1], 10) == ids[1:]
    failed = JobFilter(state="failed")
    assert [r["id"] for r in load_jobs_page(conn, failed).rows] == [ids[2], ids[1]]
    # Counted from the list when a condition the ledger does not hold applies (all failed, or
    # a queue's or task's: the ledger's number, as on the failed-jobs page).
    assert count_jobs(conn, JobFilter(state="failed", priority_min=0)).matched == 2
    retried = retry_jobs(conn, ids, as_operator())
    assert retried.done_count == 2


def _plan(conn: psycopg.Connection, query: str, params: dict) -> str:
    text = psycopg.ClientCursor(conn).mogrify(failed_jobs.with_filter(query, params), params)
    return "\n".join(row[0] for row in conn.execute("explain (costs off) " + text))


def test_readers_probe_the_jobs_table_by_id_from_the_list(conn: psycopg.Connection) -> None:
    """Few failed jobs among many: every reader walks our list's indexes and looks each job up
    by its primary key; none reads procrastinate_jobs whole or merges along its ids."""
    conn.execute(
        "insert into procrastinate_jobs (queue_name, task_name, args, status) "
        "select 'q' || (g % 3), 't', '{}', case when g % 500 = 0 then 'failed' else 'succeeded'"
        " end::procrastinate_job_status from generate_series(1, 20000) g"
    )
    conn.execute("analyze")
    everyone = FailedJobFilter().params()
    page = {"preview": 10, "before_at": None, "before_id": None, "limit": 51}
    plans = {
        "list": _plan(conn, failed_jobs.LIST_FAILED_JOBS, everyone | page),
        "queue": _plan(
            conn, failed_jobs.LIST_FAILED_JOBS, FailedJobFilter(queue="q1").params() | page
        ),
        "count": _plan(conn, failed_jobs.COUNT_FAILED_JOBS_NO_ERROR_FILTER, everyone),
        "batch": _plan(
            conn,
            failed_jobs.FAILED_IDS_BATCH,
            everyone | {"after_id": 0, "max_id": 20000, "limit": 1000},
        ),
    }
    driver = ("state:failed", "before")
    plans["jobs page"] = _plan(
        conn,
        jobs.PAGE.format(source=jobs.FAILED_SOURCE, driver=jobs._sql(driver), residual="true"),
        jobs._params(JobFilter(state="failed"))
        | {"before": 15000, "scan": 1000, "limit": 51, "max_args_bytes": 10, "preview_chars": 10},
    )
    for name, plan in plans.items():
        assert "Seq Scan on procrastinate_jobs" not in plan, (name, plan)
        assert "Merge" not in plan and "Hash" not in plan, (name, plan)
        assert "Index Scan using procrastinate_jobs_pkey" in plan, (name, plan)
    page_rows = load_jobs_page(conn, JobFilter(state="failed"), limit=30)
    assert len(page_rows.rows) == 30 and page_rows.next_before is not None
    older = load_jobs_page(conn, JobFilter(state="failed"), limit=30, before=page_rows.next_before)
    assert [r["id"] for r in older.rows] == list(range(5000, 0, -500))


DISK_FULL = """
CREATE FUNCTION fault_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
END $$
"""


def test_refusing_tables_never_fail_procrastinate_s_transaction(conn: psycopg.Connection) -> None:
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(f"{diag.severity}: {diag.message_primary}"))
    jobs = [defer(conn, queue="a") for _ in range(3)]
    conn.execute(DISK_FULL)
    for table in ("jobdash_failed_counts", "jobdash_failed_jobs"):
        conn.execute(
            f"CREATE TRIGGER fault_disk_full BEFORE INSERT OR UPDATE OR DELETE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION fault_disk_full()"
        )
    fail(conn, jobs[0])
    assert [n for n in notices if n.startswith("WARNING")] == [
        f"WARNING: jobdash: job {jobs[0]} was not counted in the failed ledger and list: "
        "could not extend file: No space left on device"
    ]
    assert conn.execute(
        "select status::text from procrastinate_jobs where id = %s", (jobs[0],)
    ).fetchone() == ("failed",)
    assert listed(conn) == {}
    conn.execute("DROP FUNCTION fault_disk_full() CASCADE")
    fail(conn, jobs[1])
    assert set(listed(conn)) == {jobs[1]}
    assert recount_failed(conn) == 2
    assert set(listed(conn)) == set(jobs[:2]) and failed_list_mismatches(conn) == {}


def test_a_locked_list_holds_a_finish_up_at_most_half_a_second(
    conn: psycopg.Connection, database_url: str
) -> None:
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    job = defer(conn, queue="a")
    conn.execute("set lock_timeout = '30s'")  # the caller's own setting does not apply inside
    with psycopg.connect(database_url) as locker:
        locker.execute("LOCK TABLE jobdash_failed_jobs IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        fail(conn, job)
        assert time.monotonic() - started < 5
        locker.rollback()
    assert any("canceling statement due to lock timeout" in n for n in notices), notices
    assert conn.execute("show lock_timeout").fetchone() == ("30s",)
    assert listed(conn) == {}
    recount_failed(conn)
    assert set(listed(conn)) == {job}


def test_a_refusing_deleted_events_table_never_fails_procrastinate_s_delete(
    conn: psycopg.Connection,
) -> None:
    """The other trigger of ours on procrastinate_jobs (BEFORE DELETE of an open job, 004,
    redefined by 008) gives way likewise."""
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    job = defer(conn, queue="a")
    set_status(conn, job, "doing")
    conn.execute(DISK_FULL)
    conn.execute(
        "CREATE TRIGGER fault_disk_full BEFORE INSERT ON jobdash_deleted_job_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION fault_disk_full()"
    )
    conn.execute("delete from procrastinate_jobs where id = %s", (job,))
    assert conn.execute("select count(*) from procrastinate_jobs").fetchone() == (0,)
    assert notices == [
        f"jobdash: the recent events of deleted job {job} were not kept: "
        "could not extend file: No space left on device"
    ]
    conn.execute("DROP FUNCTION fault_disk_full() CASCADE")
    other = defer(conn, queue="a")
    set_status(conn, other, "doing")
    conn.execute("delete from procrastinate_jobs where id = %s", (other,))
    kept = "select count(*) > 0 from jobdash_deleted_job_events where job_id = %s"
    assert conn.execute(kept, (other,)).fetchone() == (True,)


def test_a_truncate_of_the_jobs_is_never_refused_by_our_tables(conn: psycopg.Connection) -> None:
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    make_failed_jobs(conn, 2)
    conn.execute(DISK_FULL)
    conn.execute(
        "CREATE TRIGGER fault_disk_full BEFORE DELETE ON jobdash_failed_jobs"
        " FOR EACH STATEMENT EXECUTE FUNCTION fault_disk_full()"
    )
    conn.execute("truncate procrastinate_jobs cascade")
    assert conn.execute("select count(*) from procrastinate_jobs").fetchone() == (0,)
    warned = "jobdash: the failed ledger and list were not emptied"
    assert any(n.startswith(warned) for n in notices), notices
    conn.execute("DROP FUNCTION fault_disk_full() CASCADE")
    assert recount_failed(conn) == 0
    assert listed(conn) == {}
