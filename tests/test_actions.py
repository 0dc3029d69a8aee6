"""Retry / delete / restore / retry stalled against a real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import psycopg
import pytest

from jobdash.app.actions import jobs as actions
from jobdash.app.actions.jobs import (
    delete_all_matching,
    delete_jobs,
    parse_job_ids,
    restore_jobs,
    retry_all_matching,
    retry_jobs,
    retry_stalled_jobs,
    summarize,
)
from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.core.auth.identity import Action
from jobdash.core.errors import ActionError, ReadOnlyError
from tests.actions_helpers import as_operator, job_status, make_failed_jobs, snapshot_job


def audit_rows(conn):
    return conn.execute(
        "SELECT actor, action, job_ids, done, skipped, details FROM jobdash_audit_log ORDER BY id"
    ).fetchall()


def test_retry_moves_failed_to_todo_with_procrastinate_semantics(conn):
    [job_id] = make_failed_jobs(conn, 1)
    result = retry_jobs(conn, [job_id], actor=as_operator("alice"))
    assert result.done == (job_id,)
    assert result.skipped == {}
    row = conn.execute(
        "SELECT status::text, attempts, scheduled_at <= now(), queue_name, priority "
        "FROM procrastinate_jobs WHERE id = %s",
        (job_id,),
    ).fetchone()
    # procrastinate_retry_job_v2 with retry_at = now(), as Procrastinate's JobManager does.
    assert row == ("todo", 2, True, "default", 1)
    events = [
        r[0]
        for r in conn.execute(
            "SELECT type::text FROM procrastinate_events WHERE job_id = %s ORDER BY id", (job_id,)
        )
    ]
    assert events[-2:] == ["scheduled", "retried"]
    [audit] = audit_rows(conn)
    assert audit[:5] == ("alice", "retry", [job_id], 1, 0)
    assert "options" not in audit[5]


def test_retry_options_at_queue_priority(conn):
    a, b = make_failed_jobs(conn, 2, queue="emails")
    at = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)
    result = retry_jobs(conn, [a], as_operator("ops"), at=at, queue="emails-slow", priority=-5)
    assert result.done == (a,)
    assert conn.execute(
        "SELECT status::text, scheduled_at, queue_name, priority FROM procrastinate_jobs "
        "WHERE id = %s",
        (a,),
    ).fetchone() == ("todo", at, "emails-slow", -5)
    [audit] = audit_rows(conn)
    assert audit[5]["options"] == {
        "at": "2031-05-04T03:02:01+00:00",
        "queue": "emails-slow",
        "priority": -5,
    }
    assert job_status(conn, b) == "failed"
    for bad in (
        {"at": datetime(2031, 1, 1)},
        {"queue": " "},
        {"queue": "a\x00b"},
        {"priority": 2**31},
        {"priority": "3"},
    ):
        with pytest.raises(ActionError):
            retry_jobs(conn, [b], as_operator("ops"), **bad)
    assert job_status(conn, b) == "failed" and len(audit_rows(conn)) == 1


def test_retry_all_matching_with_options_moves_every_batch(conn):
    ids = make_failed_jobs(conn, 25, queue="in")
    result = retry_all_matching(
        conn,
        FailedJobFilter(queue="in"),
        as_operator("ops"),
        batch_size=10,
        queue="out",
        priority=9,
    )
    assert result.done_count == 25
    assert conn.execute(
        "SELECT DISTINCT queue_name, priority FROM procrastinate_jobs WHERE id = ANY(%s)", (ids,)
    ).fetchall() == [("out", 9)]
    options = conn.execute("SELECT DISTINCT details->'options' FROM jobdash_audit_log").fetchall()
    assert options == [({"queue": "out", "priority": 9},)]


def test_retry_skips_with_reasons(conn):
    failed, other = make_failed_jobs(conn, 2)
    conn.execute("UPDATE procrastinate_jobs SET status = 'todo' WHERE id = %s", (other,))
    result = retry_jobs(conn, [failed, other, 999_999], actor=as_operator("bob"))
    assert result.done == (failed,)
    assert result.skipped == {other: "no longer failed (now todo)", 999_999: "not found"}
    assert "Retried 1 job; skipped 2" in result.summary()
    again = retry_jobs(conn, [failed], actor=as_operator("bob"))
    assert again.done == () and again.skipped == {failed: "no longer failed (now todo)"}


def test_retry_respects_queueing_lock(conn):
    [failed] = make_failed_jobs(conn, 1, queueing_lock="only-one")
    conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock) "
        "VALUES ('q', 't', 'only-one')"
    )
    result = retry_jobs(conn, [failed], actor=as_operator("x"))
    assert result.done == ()
    [holder] = conn.execute("SELECT id FROM procrastinate_jobs WHERE status = 'todo'").fetchone()
    assert result.skipped == {
        failed: f"another job with queueing lock 'only-one' is waiting (job {holder})"
    }
    assert job_status(conn, failed) == "failed"


def test_delete_archives_then_restore_puts_back_exactly(conn):
    [job_id, kept] = make_failed_jobs(conn, 2, message="it broke")
    before = snapshot_job(conn, job_id)
    assert before[1] and before[2]  # has events and errors
    result = delete_jobs(conn, [job_id], actor=as_operator("alice"))
    assert result.done == (job_id,)
    assert job_status(conn, job_id) is None
    assert snapshot_job(conn, job_id) == (None, [], [])
    assert job_status(conn, kept) == "failed"
    archived = conn.execute(
        "SELECT job_id, deleted_by, jsonb_array_length(events), jsonb_array_length(errors) "
        "FROM jobdash_deleted_jobs"
    ).fetchall()
    assert archived == [(job_id, "alice", len(before[1]), 1)]

    restored = restore_jobs(conn, [job_id], actor=as_operator("carol"))
    assert restored.done == (job_id,)
    assert snapshot_job(conn, job_id) == before
    again = restore_jobs(conn, [job_id, 123_456], actor=as_operator("carol"))
    assert again.done == ()
    assert again.skipped == {job_id: "already restored", 123_456: "not in the archive"}
    assert [r[1] for r in audit_rows(conn)] == ["delete", "restore", "restore"]


def test_delete_again_after_restore_and_already_deleted_reason(conn):
    [job_id] = make_failed_jobs(conn, 1)
    assert delete_jobs(conn, [job_id], as_operator("a")).done == (job_id,)
    assert delete_jobs(conn, [job_id], as_operator("b")).skipped == {job_id: "already deleted"}
    assert restore_jobs(conn, [job_id], as_operator("a")).done == (job_id,)
    assert delete_jobs(conn, [job_id], as_operator("a")).done == (job_id,)
    assert restore_jobs(conn, [job_id], as_operator("a")).done == (job_id,)
    assert job_status(conn, job_id) == "failed"


def test_restore_drops_link_to_vanished_worker(conn):
    [job_id] = make_failed_jobs(conn, 1)
    worker = conn.execute(
        "INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id"
    ).fetchone()[0]
    conn.execute("UPDATE procrastinate_jobs SET worker_id = %s WHERE id = %s", (worker, job_id))
    delete_jobs(conn, [job_id], as_operator("a"))
    conn.execute("DELETE FROM procrastinate_workers WHERE id = %s", (worker,))
    assert restore_jobs(conn, [job_id], as_operator("a")).done == (job_id,)
    assert conn.execute(
        "SELECT worker_id FROM procrastinate_jobs WHERE id = %s", (job_id,)
    ).fetchone() == (None,)


def test_read_only_refuses_every_action(conn, monkeypatch):
    [job_id] = make_failed_jobs(conn, 1)
    monkeypatch.setenv("JOBDASH_READ_ONLY", "1")
    for call in (
        lambda: retry_jobs(conn, [job_id], as_operator("a")),
        lambda: delete_jobs(conn, [job_id], as_operator("a")),
        lambda: restore_jobs(conn, [job_id], as_operator("a")),
        lambda: retry_all_matching(conn, FailedJobFilter(), as_operator("a")),
        lambda: delete_all_matching(conn, FailedJobFilter(), as_operator("a")),
        lambda: retry_stalled_jobs(conn, as_operator("a")),
    ):
        with pytest.raises(ReadOnlyError):
            call()
    assert job_status(conn, job_id) == "failed"
    assert audit_rows(conn) == []


def test_parse_job_ids():
    assert parse_job_ids(["3", 1, " 3 ", 2]) == [3, 1, 2]
    with pytest.raises(ActionError, match="not a job id: 'x'"):
        parse_job_ids(["1", "x"])
    with pytest.raises(ActionError):
        parse_job_ids(["-4"])


def test_summarize_stopped():
    text = summarize("delete", 2000, {"no longer failed (now todo)": 3}, stopped=True, total=10_000)
    assert text == (
        "Stopped midway. Deleted 2,000 jobs; skipped 3 (no longer failed (now todo): 3); "
        "7,997 of 10,000 matching not processed"
    )


def test_refuses_connection_inside_transaction(conn):
    [job_id] = make_failed_jobs(conn, 1)
    with conn.transaction(), pytest.raises(ActionError):
        retry_jobs(conn, [job_id], as_operator("a"))


def test_race_each_job_acted_on_exactly_once(database_url, conn):
    ids = make_failed_jobs(conn, 100)
    results = []
    errors = []
    barrier = threading.Barrier(6)

    def operator(kind: str, order: list[int]) -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as own:
                barrier.wait(timeout=10)
                func = retry_jobs if kind == "retry" else delete_jobs
                results.append(func(own, order, actor=as_operator(kind)))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=operator, args=(kind, ids if i % 2 else list(reversed(ids))))
        for i, kind in enumerate(["retry", "delete", "retry", "delete", "retry", "delete"])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    all_done = [job_id for r in results for job_id in r.done]
    assert sorted(all_done) == sorted(ids)  # each exactly once
    for r in results:
        assert r.done_count + r.skipped_count == 100
    retried = {j for r in results if r.action == "retry" for j in r.done}
    deleted = {j for r in results if r.action == "delete" for j in r.done}
    statuses = dict(
        conn.execute(
            "SELECT id, status::text FROM procrastinate_jobs WHERE id = ANY(%s)", (ids,)
        ).fetchall()
    )
    assert set(statuses) == retried and set(statuses.values()) <= {"todo"}
    archived = {r[0] for r in conn.execute("SELECT job_id FROM jobdash_deleted_jobs")}
    assert archived == deleted
    assert conn.execute("SELECT sum(done) FROM jobdash_audit_log").fetchone()[0] == 100


def test_all_matching_batches_and_stop_midway(conn):
    ids = make_failed_jobs(conn, 10_000, queue="bulk")
    others = make_failed_jobs(conn, 5, queue="other")
    seen = []

    def progress(result):
        seen.append(result.processed)

    result = retry_all_matching(
        conn,
        FailedJobFilter(queue="bulk"),
        as_operator("ops"),
        batch_size=1000,
        should_stop=lambda: len(seen) >= 4,
        progress=progress,
    )
    assert result.stopped
    assert result.done_count == 4000 and result.total == 10_000
    assert seen == [1000, 2000, 3000, 4000]
    assert "Stopped midway. Retried 4,000 jobs" in result.summary()
    assert "6,000 of 10,000 matching not processed" in result.summary()
    counts = dict(
        conn.execute(
            "SELECT status::text, count(*) FROM procrastinate_jobs WHERE id = ANY(%s) GROUP BY 1",
            (ids,),
        ).fetchall()
    )
    assert counts == {"todo": 4000, "failed": 6000}
    assert all(job_status(conn, j) == "failed" for j in others)
    audits = conn.execute(
        "SELECT done, filter, details->>'batch' FROM jobdash_audit_log ORDER BY id"
    ).fetchall()
    assert [a[0] for a in audits] == [1000] * 4
    assert audits[0][1] == {"queue": "bulk"}

    rest = delete_all_matching(
        conn, FailedJobFilter(queue="bulk"), as_operator("ops"), batch_size=2500
    )
    assert not rest.stopped and rest.done_count == 6000
    assert conn.execute("SELECT count(*) FROM jobdash_deleted_jobs").fetchone()[0] == 6000


def test_all_matching_filters_by_error_text_and_type(conn):
    make_failed_jobs(conn, 3, exception_type="KeyError", message="customer_id missing")
    timeouts = make_failed_jobs(conn, 2, exception_type="TimeoutError", message="100% slow_down")
    result = retry_all_matching(
        conn, FailedJobFilter(error_contains="100% SLOW_"), as_operator("ops")
    )
    assert sorted(result.done) == timeouts
    result = retry_all_matching(
        conn, FailedJobFilter(exception_type="KeyError"), as_operator("ops")
    )
    assert result.done_count == 3


def test_retry_stalled_jobs(conn):
    live = conn.execute("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id").fetchone()[
        0
    ]
    dead = conn.execute(
        "INSERT INTO procrastinate_workers (last_heartbeat) "
        "VALUES (now() - interval '5 minutes') RETURNING id"
    ).fetchone()[0]
    rows = conn.execute(
        """
        INSERT INTO procrastinate_jobs (queue_name, task_name, status, worker_id, abort_requested)
        VALUES ('q', 't', 'doing', %s, false), ('q', 't', 'doing', %s, false),
               ('q', 't', 'doing', NULL, false), ('q', 't', 'doing', %s, true)
        RETURNING id
        """,
        (live, dead, dead),
    ).fetchall()
    on_live, on_dead, orphan, aborting = (r[0] for r in rows)
    result = retry_stalled_jobs(conn, as_operator("ops"))
    assert sorted(result.done) == [on_dead, orphan]
    assert result.skipped == {aborting: "abort was requested: marked failed instead"}
    assert job_status(conn, on_live) == "doing"
    assert job_status(conn, aborting) == "failed"
    assert job_status(conn, on_dead) == "todo"
    again = retry_stalled_jobs(conn, as_operator("ops"), ids=[on_live, on_dead])
    assert again.done == ()
    assert again.skipped == {
        on_live: "not stalled (its worker is alive)",
        on_dead: "no longer doing (now todo)",
    }
    assert actions.DONE_WORDS[Action.RETRY_STALLED] in result.summary()


def test_retry_stalled_goes_through_procrastinate_and_respects_queueing_locks(conn):
    rows = conn.execute(
        """
        INSERT INTO procrastinate_jobs (queue_name, task_name, status, queueing_lock)
        VALUES ('q', 't', 'doing', 'sync-7'), ('q', 't', 'doing', 'sync-8'),
               ('q', 't', 'todo', 'sync-7')
        RETURNING id
        """
    ).fetchall()
    blocked, free, waiting = (r[0] for r in rows)
    result = retry_stalled_jobs(conn, as_operator("ops"))
    assert result.done == (free,)
    assert result.skipped == {
        blocked: f"another job with queueing lock 'sync-7' is waiting (job {waiting})"
    }
    events = [
        r[0]
        for r in conn.execute(
            "SELECT type::text FROM procrastinate_events WHERE job_id = %s ORDER BY id", (free,)
        )
    ]
    assert "deferred_for_retry" in events
    assert conn.execute(
        "SELECT status::text, attempts FROM procrastinate_jobs WHERE id = %s", (free,)
    ).fetchone() == ("todo", 1)
    assert job_status(conn, blocked) == "doing"
