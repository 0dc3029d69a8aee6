"""Actions on jobs in any state: conditional, audited, exactly once under races, with CLI twins."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest

from jobdash.app.actions import controls, explorer
from jobdash.app.actions.jobs import restore_jobs
from jobdash.app.actions.retry import RetryOptions
from jobdash.app.cli.main import main
from jobdash.app.read.job_filter import JobFilter
from jobdash.core.errors import ActionError, ReadOnlyError
from tests.actions_helpers import as_operator, job_status
from tests.dashboard_data import add_job

OPS = as_operator("ops")


def audit(conn) -> list[tuple]:
    return conn.execute(
        "SELECT action, actor, done, skipped FROM jobdash_audit_log ORDER BY id"
    ).fetchall()


def test_cancel_only_waiting_jobs_and_say_why_not(conn):
    ready, running, done = add_job(conn), add_job(conn, final_status="doing"), add_job(conn)
    result = explorer.cancel_jobs(conn, [ready, running, 999_999], OPS)
    assert result.done == (ready,)
    assert result.skipped == {running: "not waiting (now doing)", 999_999: "not found"}
    assert result.summary() == (
        "Cancelled 1 job; skipped 2 (not waiting (now doing): 1, not found: 1)"
    )
    assert job_status(conn, ready) == "cancelled"
    assert explorer.cancel_jobs(conn, [done], OPS, delete=True).done == (done,)
    assert job_status(conn, done) is None
    assert audit(conn) == [("cancel", "ops", 1, 2), ("delete", "ops", 1, 0)]


def test_abort_run_now_reschedule(conn):
    running, waiting = add_job(conn, final_status="doing"), add_job(conn)
    result = explorer.abort_jobs(conn, [running, waiting], OPS)
    assert result.done == (running,) and result.skipped == {waiting: "not running (now ready)"}
    (flag,) = conn.execute(
        "SELECT abort_requested FROM procrastinate_jobs WHERE id = %s", (running,)
    ).fetchone()
    assert flag is True
    at = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert explorer.reschedule_jobs(conn, [waiting], OPS, at=at).done == (waiting,)
    skipped = explorer.run_now(conn, [running], OPS).skipped
    assert skipped == {running: "not scheduled (now abort requested)"}
    assert explorer.run_now(conn, [waiting], OPS).done == (waiting,)
    (ready,) = conn.execute(
        "SELECT scheduled_at <= now() FROM procrastinate_jobs WHERE id = %s", (waiting,)
    ).fetchone()
    assert ready
    events = [
        r[0]
        for r in conn.execute(
            "SELECT type::text FROM procrastinate_events WHERE job_id = %s ORDER BY id", (waiting,)
        )
    ]
    assert events == ["deferred", "scheduled", "scheduled"]
    with pytest.raises(ActionError, match="timezone-aware"):
        explorer.reschedule_jobs(conn, [waiting], OPS, at=dt.datetime(2031, 1, 1))


def test_delete_finished_jobs_archives_and_restores(conn):
    ok = add_job(conn, final_status="succeeded")
    cancelled = add_job(conn, final_status="cancelled")
    running = add_job(conn, final_status="doing")
    result = explorer.delete_finished_jobs(conn, [ok, cancelled, running], OPS)
    assert result.done == (ok, cancelled)
    assert result.skipped == {running: "not finished (now doing)"}
    assert explorer.delete_finished_jobs(conn, [ok], OPS).skipped == {ok: "already deleted"}
    assert restore_jobs(conn, [ok, cancelled], OPS).done == (ok, cancelled)
    assert job_status(conn, ok) == "succeeded" and job_status(conn, cancelled) == "cancelled"


def test_all_matching_in_batches_with_progress_and_stop(conn):
    ids = [add_job(conn, queue="emails") for _ in range(5)]
    other = add_job(conn, queue="reports")
    seen = []
    result = explorer.cancel_all_matching(
        conn, JobFilter(state="ready", queue="emails"), OPS, batch_size=2,
        progress=seen.append, should_stop=lambda: len(seen) >= 2,
    )  # fmt: skip
    assert result.stopped and result.done_count == 4 and result.total == 5
    assert [r.done_count for r in seen] == [2, 4]
    assert "Stopped midway" in result.summary()
    assert "1 of 5 matching not processed" in result.summary()
    # Newest first: the oldest is left.
    assert job_status(conn, ids[0]) == "todo" and job_status(conn, other) == "todo"
    rows = conn.execute(
        "SELECT filter, details->>'batch' FROM jobdash_audit_log ORDER BY id"
    ).fetchall()
    assert rows == [({"state": "ready", "queue": "emails"}, "1")] * 1 + [
        ({"state": "ready", "queue": "emails"}, "2")
    ]


def test_all_matching_walks_past_the_search_window(conn):
    ids = [add_job(conn, final_status="succeeded", args={"n": 1}) for _ in range(5)]
    for _ in range(5):
        add_job(conn, final_status="succeeded")
    result = explorer.delete_finished_all_matching(
        conn, JobFilter(args='{"n":1}'), OPS, batch_size=2, scan=3
    )
    assert sorted(result.done) == ids and not result.skipped


def test_retry_all_matching_an_explorer_filter_with_options(conn):
    ids = [add_job(conn, final_status="failed", task="t.pay") for _ in range(3)]
    add_job(conn, final_status="failed", task="t.other")
    result = explorer.retry_all_matching_jobs(
        conn, JobFilter(state="failed", task="t.pay"), OPS,
        retry=RetryOptions(queue="slow", priority=3),
    )  # fmt: skip
    assert sorted(result.done) == ids
    rows = conn.execute(
        "SELECT DISTINCT queue_name, priority, status::text FROM procrastinate_jobs"
        " WHERE id = ANY(%s)", (ids,),
    ).fetchall()  # fmt: skip
    assert rows == [("slow", 3, "todo")]


def test_concurrent_cancels_act_on_each_job_once(database_url, conn):
    ids = [add_job(conn) for _ in range(40)]
    results = []

    def cancel() -> None:
        with psycopg.connect(database_url, autocommit=True) as own:
            results.append(explorer.cancel_jobs(own, ids, OPS))

    threads = [threading.Thread(target=cancel) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i for r in results for i in r.done) == ids
    assert sum(r.skipped_count for r in results) == 80
    (events,) = conn.execute(
        "SELECT count(*) FROM procrastinate_events WHERE type = 'cancelled'"
    ).fetchone()
    assert events == 40


def test_read_only_refuses(conn, monkeypatch):
    monkeypatch.setenv("JOBDASH_READ_ONLY", "1")
    job = add_job(conn)
    for act in (
        lambda: explorer.cancel_jobs(conn, [job], OPS),
        lambda: explorer.abort_jobs(conn, [job], OPS),
        lambda: controls.pause_queue(conn, "q", OPS),
        lambda: controls.disable_periodic(conn, "t", OPS),
    ):
        with pytest.raises(ReadOnlyError):
            act()
    assert job_status(conn, job) == "todo"


def test_cli_cancel_abort_and_controls_exit_codes(database_url, conn, capsys):
    url = ["--database-url", database_url]
    ready, running = add_job(conn, queue="q"), add_job(conn, final_status="doing")
    assert main(["cancel", str(ready), str(running), *url]) == 1
    out = capsys.readouterr().out
    assert "Cancelled 1 job" in out and f"skipped {running}: not waiting (now doing)" in out
    assert main(["abort", str(running), *url]) == 0
    assert main(["abort", str(running), *url]) == 1
    assert "abort already requested" in capsys.readouterr().out
    assert main(["cancel", "--all-matching", "--state", "failed", *url]) == 2
    assert main(["cancel", "1", "--queue", "q", *url]) == 2
    assert "filters apply only with --all-matching" in capsys.readouterr().err
    more = [add_job(conn, queue="q") for _ in range(3)]
    assert main(["cancel", "--all-matching", "--queue", "q", *url]) == 0
    assert "Cancelled 3 jobs" in capsys.readouterr().out
    assert {job_status(conn, i) for i in more} == {"cancelled"}
    assert main(["pause", "q", *url]) == 0
    assert main(["pause", "q", *url]) == 1
    assert "already paused" in capsys.readouterr().out
    assert main(["resume", "q", *url]) == 0
    assert main(["periodic", "disable", "nosuch", *url]) == 2
    assert "no periodic task 'nosuch' is published" in capsys.readouterr().err
    assert main(["jobs", "--state", "bogus", *url]) == 2


def test_a_viewer_and_nobody_are_refused_with_nothing_changed(conn):
    from jobdash.core.auth.identity import Identity, Role
    from jobdash.core.errors import PermissionDenied

    job = add_job(conn)
    viewer = Identity("vera", Role.VIEWER, "builtin")
    for actor in (viewer, None):
        for act in (
            lambda a: explorer.cancel_jobs(conn, [job], a),
            lambda a: explorer.abort_jobs(conn, [job], a),
            lambda a: explorer.run_now(conn, [job], a),
            lambda a: explorer.delete_finished_jobs(conn, [job], a),
            lambda a: explorer.cancel_all_matching(conn, JobFilter(state="ready"), a),
            lambda a: controls.pause_queue(conn, "q", a),
            lambda a: controls.run_periodic_now(conn, "t", a),
            lambda a: controls.enable_periodic(conn, "t", a),
        ):
            with pytest.raises(PermissionDenied):
                act(actor)
    assert job_status(conn, job) == "todo"
    assert conn.execute("SELECT count(*) FROM jobdash_audit_log").fetchone()[0] == 0
