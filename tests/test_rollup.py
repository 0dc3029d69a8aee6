"""The rollup against real PostgreSQL: totals, idempotence, crashes, late commits, locks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobdash.jobs.maintenance.rollup as rollup_module
from jobdash.app.read.history import load_history
from jobdash.core.history_tables import EVENT_BUCKETS_SQL, HISTOGRAM_COLUMNS, NO_CEILING_ID
from jobdash.jobs.maintenance.rollup import (
    MAX_OPEN_TRANSACTION_LOOKBACK,
    ROLLUP_LOCK_KEY,
    TRAILING_WINDOW,
    backfill_chunks,
    recompute_from,
    run_maintenance,
    window_start,
)
from tests.history_helpers import (
    REFERENCE_EVENT_BUCKETS_SQL,
    db_now,
    defer_job,
    minute_totals,
    raw_event_totals,
    rollup,
    run_job,
    set_event_time,
    set_status,
)


def _minutes_ago(conn: psycopg.Connection, minutes: float):
    return db_now(conn) - timedelta(minutes=minutes)


def test_counts_and_durations_match_raw_events(conn, database_url):
    now = db_now(conn)
    t0 = (now - timedelta(minutes=5)).replace(second=10, microsecond=0)
    run_job(conn, outcome="succeeded", started_at=t0, finished_at=t0 + timedelta(seconds=2))
    run_job(conn, outcome="failed", started_at=t0, finished_at=t0 + timedelta(seconds=30))
    run_job(
        conn,
        outcome="succeeded",
        started_at=t0,
        finished_at=t0 + timedelta(seconds=1),
        retries=2,
        queue="mail",
        task="t.send",
    )
    run_job(conn, outcome="aborted", started_at=t0, finished_at=t0 + timedelta(seconds=5))
    cancelled = defer_job(conn)
    set_status(conn, cancelled, "cancelled")
    set_event_time(conn, cancelled, "cancelled", t0)

    report = rollup(database_url)

    assert not report.skipped
    assert minute_totals(conn) == raw_event_totals(conn, now - timedelta(hours=1))
    row = conn.execute(
        "SELECT succeeded, failed, aborted, cancelled, duration_count, duration_sum_ms,"
        " duration_max_ms, " + ", ".join(HISTOGRAM_COLUMNS) + " FROM jobdash_history_minute"
        " WHERE queue_name = 'default' AND task_name = 't.work'"
    ).fetchone()
    assert row[:5] == (1, 1, 1, 1, 3)
    assert row[5] == pytest.approx(37_000)
    assert row[6] == pytest.approx(30_000)
    assert sum(row[7:]) == 3
    retried = conn.execute(
        "SELECT started, retried, succeeded FROM jobdash_history_minute WHERE queue_name='mail'"
    ).fetchone()
    assert retried == (3, 2, 1)


def test_rerun_is_idempotent_and_hours_match_minutes(conn, database_url):
    t0 = _minutes_ago(conn, 3)
    for _ in range(3):
        run_job(conn, started_at=t0, finished_at=t0 + timedelta(milliseconds=120))
    rollup(database_url)
    first = minute_totals(conn)
    rollup(database_url)
    assert minute_totals(conn) == first
    hour_total = conn.execute(
        "SELECT sum(succeeded), sum(duration_count) FROM jobdash_history_hour"
    ).fetchone()
    assert hour_total == (3, 3)


def test_crash_midway_commits_nothing_and_next_run_is_right(conn, database_url, monkeypatch):
    t0 = _minutes_ago(conn, 2)
    run_job(conn, started_at=t0, finished_at=t0 + timedelta(seconds=1))

    def crash(*args, **kwargs):
        raise RuntimeError("injected crash")

    monkeypatch.setattr(rollup_module, "_sample_queue_depth", crash)
    with pytest.raises(RuntimeError):
        rollup(database_url)
    assert minute_totals(conn) == {}
    assert conn.execute("SELECT last_run_at FROM jobdash_rollup_state").fetchone() == (None,)

    monkeypatch.undo()
    rollup(database_url)
    assert minute_totals(conn) == raw_event_totals(conn, t0 - timedelta(minutes=1))


def test_late_committing_events_are_counted_once(conn, database_url):
    job_id = defer_job(conn)
    set_status(conn, job_id, "doing")
    with psycopg.connect(database_url) as late:
        # This transaction's now() is earlier than the rollup below: its event's `at` too.
        late.execute("SELECT now()")
        rollup(database_url)
        late.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (job_id,))
        rollup(database_url)
        assert conn.execute(
            "SELECT coalesce(sum(succeeded), 0) FROM jobdash_history_minute"
        ).fetchone() == (0,)
        late.commit()
    rollup(database_url)
    rollup(database_url)
    assert conn.execute("SELECT sum(succeeded) FROM jobdash_history_minute").fetchone() == (1,)


def test_state_keeps_open_transactions_for_the_next_run(conn, database_url):
    job_id = defer_job(conn)
    set_status(conn, job_id, "doing")
    with psycopg.connect(database_url) as late:
        late_start = late.execute("SELECT now()").fetchone()[0]
        report = rollup(database_url)
        state = conn.execute("SELECT last_run_at, recompute_from FROM jobdash_rollup_state")
        assert state.fetchone() == (report.window_end, late_start)
        late.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (job_id,))
        late.commit()
    # Closed now: the next run starts at or before the recorded start, and counts it once.
    report = rollup(database_url)
    assert report.window_start <= late_start
    assert conn.execute("SELECT sum(succeeded) FROM jobdash_history_minute").fetchone() == (1,)
    state = conn.execute("SELECT last_run_at, recompute_from FROM jobdash_rollup_state")
    assert state.fetchone() == (report.window_end, report.window_end)


def test_second_concurrent_run_skips_while_lock_held(conn, database_url):
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK_KEY,))
        assert rollup(database_url).skipped
    assert not rollup(database_url).skipped


def test_concurrent_runs_do_not_corrupt(conn, database_url):
    t0 = _minutes_ago(conn, 4)
    for i in range(10):
        run_job(conn, started_at=t0, finished_at=t0 + timedelta(seconds=i))
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(3):
                rollup(database_url)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert minute_totals(conn) == raw_event_totals(conn, t0 - timedelta(minutes=1))


def test_deleted_jobs_keep_their_counts(conn, database_url):
    t0 = _minutes_ago(conn, 3)
    ids = [run_job(conn, started_at=t0, finished_at=t0 + timedelta(seconds=1)) for _ in range(4)]
    rollup(database_url)
    # Deleting inside the recomputed window (dashboard delete, delete_jobs) and long after
    # (remove_old_jobs): history stays.
    conn.execute("DELETE FROM procrastinate_jobs WHERE id = ANY(%s)", (ids[:2],))
    rollup(database_url)
    assert conn.execute("SELECT sum(succeeded) FROM jobdash_history_minute").fetchone() == (4,)
    conn.execute("DELETE FROM procrastinate_jobs")
    conn.execute("DELETE FROM jobdash_deleted_job_events")
    conn.execute("UPDATE jobdash_rollup_state SET last_run_at = now()")
    conn.execute("UPDATE jobdash_history_minute SET bucket = bucket - interval '1 hour'")
    rollup(database_url)
    assert conn.execute("SELECT sum(succeeded) FROM jobdash_history_minute").fetchone() == (4,)


def test_jobs_procrastinate_deletes_when_they_finish_keep_their_outcome(conn, database_url):
    # delete_jobs="always"/"successful": procrastinate_finish_job_v1(..., delete_job => true)
    # deletes the doing row and writes no finish event.
    def finish_deleting(outcome: str, error_recorded: bool = False) -> int:
        job_id = defer_job(conn)
        set_status(conn, job_id, "doing")
        if error_recorded:  # what the instrumented worker's middleware writes first
            conn.execute(
                "INSERT INTO jobdash_job_errors (job_id, attempt, exception_type, message,"
                " traceback, will_retry) VALUES (%s, 1, 'builtins.ValueError', 'x', '', false)",
                (job_id,),
            )
        conn.execute("SELECT procrastinate_finish_job_v1(%s, %s, true)", (job_id, outcome))
        return job_id

    finish_deleting("succeeded")
    finish_deleting("succeeded")
    finish_deleting("failed", error_recorded=True)
    assert conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (0,)
    rollup(database_url)
    assert conn.execute(
        "SELECT sum(started), sum(succeeded), sum(failed), sum(duration_count)"
        " FROM jobdash_history_minute"
    ).fetchone() == (3, 2, 1, 3)
    rollup(database_url)  # recomputing the window counts them once
    assert conn.execute("SELECT sum(succeeded) FROM jobdash_history_minute").fetchone() == (2,)


def test_backfill_builds_history_from_old_events(conn, database_url):
    old = db_now(conn) - timedelta(days=3)
    run_job(conn, started_at=old, finished_at=old + timedelta(seconds=3))
    run_job(conn, outcome="failed", started_at=old, finished_at=old + timedelta(seconds=3))
    rollup(database_url)
    assert conn.execute("SELECT count(*) FROM jobdash_history_minute").fetchone() == (0,)
    report = rollup(database_url, backfill=True)
    assert report.window_start <= old
    assert minute_totals(conn) == raw_event_totals(conn, old - timedelta(days=1))
    assert conn.execute(
        "SELECT sum(succeeded), sum(failed) FROM jobdash_history_hour"
    ).fetchone() == (1, 1)
    assert conn.execute(
        "SELECT last_backfill_at IS NOT NULL FROM jobdash_rollup_state"
    ).fetchone() == (True,)


def test_retention_downsamples_minutes_into_hours(conn, database_url):
    now = db_now(conn)
    old = (now - timedelta(days=20)).replace(minute=7)
    ancient = now - timedelta(days=500)
    for at in (old, old + timedelta(minutes=3), ancient):
        run_job(conn, started_at=at, finished_at=at + timedelta(seconds=2))
    rollup(database_url, backfill=True)
    # Hours that lost their rows meanwhile must be rebuilt from the minutes before they go.
    conn.execute("DELETE FROM jobdash_history_hour")
    with psycopg.connect(database_url, autocommit=True) as c:
        run_maintenance(c, minute_retention_days=14, hour_retention_days=400)
    assert conn.execute(
        "SELECT count(*) FROM jobdash_history_minute WHERE bucket < now() - interval '14 days'"
    ).fetchone() == (0,)
    hours = conn.execute(
        "SELECT bucket, succeeded, duration_count FROM jobdash_history_hour"
    ).fetchall()
    assert [(h[1], h[2]) for h in hours] == [(2, 2)]
    assert hours[0][0] == old.replace(minute=0, second=0, microsecond=0)


def test_queue_depth_sample(conn, database_url):
    for _ in range(3):
        defer_job(conn, queue="mail")
    scheduled = defer_job(conn, queue="mail")
    conn.execute(
        "UPDATE procrastinate_jobs SET scheduled_at = now() + interval '1 hour' WHERE id = %s",
        (scheduled,),
    )
    doing = defer_job(conn, queue="mail")
    set_status(conn, doing, "doing")
    conn.execute(
        "UPDATE procrastinate_events SET at = now() - interval '90 seconds' WHERE type = 'deferred'"
    )
    rollup(database_url)
    row = conn.execute(
        "SELECT ready_max, scheduled_max, doing_max, oldest_ready_age_max_s"
        " FROM jobdash_queue_depth_minute WHERE queue_name = 'mail'"
    ).fetchone()
    assert row[:3] == (3, 1, 1)
    assert 85 <= row[3] <= 200


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    jobs=st.lists(
        st.tuples(
            st.sampled_from(["q1", "q2"]),
            st.sampled_from(["a", "b"]),
            st.sampled_from(["succeeded", "failed", "aborted"]),
            st.integers(min_value=0, max_value=300),  # started, seconds ago (+60)
            st.integers(min_value=0, max_value=5000),  # duration ms
            st.integers(min_value=0, max_value=2),  # retries
        ),
        max_size=8,
    )
)
def test_property_totals_equal_raw_counts(conn, database_url, jobs):
    conn.execute(
        "TRUNCATE procrastinate_jobs, jobdash_history_minute, jobdash_history_hour,"
        " jobdash_deleted_job_events CASCADE"
    )
    conn.execute("UPDATE jobdash_rollup_state SET last_run_at = NULL, recompute_from = NULL")
    now = db_now(conn)
    for queue, task, outcome, ago, duration, retries in jobs:
        start = now - timedelta(seconds=60 + ago)
        run_job(
            conn,
            queue=queue,
            task=task,
            outcome=outcome,
            started_at=start,
            finished_at=start + timedelta(milliseconds=duration),
            retries=retries,
        )
    rollup(database_url)
    assert minute_totals(conn) == raw_event_totals(conn, now - timedelta(hours=1))


def test_blueprint_registers_periodic_rollup_and_maintain_runs(conn, database_url):
    from procrastinate import App, PsycopgConnector

    from jobdash.jobs.maintenance.task import MAINTENANCE_QUEUE, build_blueprint, maintain

    app = App(connector=PsycopgConnector(conninfo=database_url))
    app.add_tasks_from(build_blueprint(), namespace="jobdash")
    task = app.tasks["jobdash:rollup"]
    assert task.queue == MAINTENANCE_QUEUE
    assert [p.cron for p in app.periodic_registry.periodic_tasks.values()] == ["* * * * *"]

    t0 = _minutes_ago(conn, 2)
    run_job(conn, started_at=t0, finished_at=t0 + timedelta(seconds=1))
    assert not maintain(database_url).skipped
    assert conn.execute("SELECT sum(succeeded) FROM jobdash_history_minute").fetchone() == (1,)


def _buckets(conn: psycopg.Connection, query: str, params: dict) -> list[tuple]:
    rows = conn.execute(query, params).fetchall()
    # Float sums may differ in the last bits with the summation order.
    return sorted(
        tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows
    )


def _crafted_history(conn: psycopg.Connection, t0) -> None:
    """Attempts the pairing must get right, around t0 (+/- minutes)."""
    s = timedelta(seconds=1)
    run_job(conn, started_at=t0, finished_at=t0 + 2 * s)
    run_job(conn, outcome="failed", started_at=t0 - 90 * s, finished_at=t0 + 30 * s)
    # Retries: every attempt ends (deferred_for_retry) after its own start.
    run_job(conn, started_at=t0 - 200 * s, finished_at=t0 + 5 * s, retries=2, queue="mail")
    run_job(conn, outcome="aborted", started_at=t0 + 61 * s, finished_at=t0 + 62 * s)
    # Started long before every window below, finished inside them.
    run_job(conn, started_at=t0 - timedelta(hours=2), finished_at=t0 + 10 * s, task="t.long")
    # Start and end at the same instant.
    run_job(conn, started_at=t0 + 3 * s, finished_at=t0 + 3 * s)
    # An end without any start, and a job whose second attempt started inside the window
    # after a first attempt started before it.
    orphan = defer_job(conn, task="t.orphan")
    conn.execute(
        "INSERT INTO procrastinate_events (job_id, type, at) VALUES (%s, 'succeeded', %s)",
        (orphan, t0 + 4 * s),
    )
    two = defer_job(conn, task="t.two")
    for at, kind in (
        (t0 - 600 * s, "started"), (t0 - 300 * s, "deferred_for_retry"),
        (t0 + 20 * s, "started"), (t0 + 25 * s, "failed"),
    ):  # fmt: skip
        conn.execute(
            "INSERT INTO procrastinate_events (job_id, type, at)"
            " VALUES (%s, %s::procrastinate_job_event_type, %s)",
            (two, kind, at),
        )
    # Deleted jobs: their events live on in jobdash_deleted_job_events, one of them started
    # before the windows; and one Procrastinate deleted while doing (a synthetic finish).
    gone = [
        run_job(conn, started_at=t0 - 30 * s, finished_at=t0 + 40 * s, queue="gone"),
        run_job(conn, started_at=t0 + 40 * s, finished_at=t0 + 41 * s, queue="gone"),
    ]
    conn.execute("DELETE FROM procrastinate_jobs WHERE id = ANY(%s)", (gone,))
    doing = defer_job(conn, queue="gone")
    set_status(conn, doing, "doing")
    conn.execute("SELECT procrastinate_finish_job_v1(%s, 'succeeded', true)", (doing,))


def test_event_bucket_sql_equals_its_reference_on_crafted_attempts(conn):
    t0 = _minutes_ago(conn, 20).replace(second=30, microsecond=0)
    _crafted_history(conn, t0)
    now = db_now(conn)
    checked = 0
    for offset_s in (-7200, -400, -100, -30, 0, 20, 60):
        params = {
            "start": t0 + timedelta(seconds=offset_s),
            "end": now,
            "floor_id": 0,
            "ceiling_id": NO_CEILING_ID,
        }
        reference = _buckets(conn, REFERENCE_EVENT_BUCKETS_SQL, params)
        assert _buckets(conn, EVENT_BUCKETS_SQL, params) == reference
        checked += len(reference)
    assert checked > 20


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    attempts=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3),  # job (a few, so attempts interleave)
            st.integers(min_value=-600, max_value=600),  # start, seconds from t0
            st.integers(min_value=0, max_value=400_000),  # duration ms
            st.sampled_from(["succeeded", "failed", "deferred_for_retry", "aborted"]),
        ),
        max_size=10,
    ),
    window_offset_s=st.integers(min_value=-300, max_value=300),
)
def test_property_event_bucket_sql_equals_its_reference(conn, attempts, window_offset_s):
    conn.execute("TRUNCATE procrastinate_jobs, jobdash_deleted_job_events CASCADE")
    t0 = _minutes_ago(conn, 15).replace(microsecond=0)
    jobs = [defer_job(conn, task=f"t{i % 2}") for i in range(4)]
    for job, start_s, duration_ms, end in attempts:
        started_at = t0 + timedelta(seconds=start_s)
        for kind, at in (
            ("started", started_at),
            (end, started_at + timedelta(milliseconds=duration_ms)),
        ):
            conn.execute(
                "INSERT INTO procrastinate_events (job_id, type, at)"
                " VALUES (%s, %s::procrastinate_job_event_type, %s)",
                (jobs[job], kind, at),
            )
    params = {
        "start": t0 + timedelta(seconds=window_offset_s),
        "end": db_now(conn),
        "floor_id": 0,
        "ceiling_id": NO_CEILING_ID,
    }
    reference = _buckets(conn, REFERENCE_EVENT_BUCKETS_SQL, params)
    assert _buckets(conn, EVENT_BUCKETS_SQL, params) == reference


def test_event_bucket_sql_evaluates_the_start_probe_once_per_event(conn):
    plan = "\n".join(
        r[0]
        for r in conn.execute(
            "EXPLAIN " + EVENT_BUCKETS_SQL,
            {"start": db_now(conn), "end": db_now(conn), "floor_id": 0, "ceiling_id": 1},
        ).fetchall()
    )
    assert plan.count("SubPlan") == 1


def test_backfill_records_the_end_of_its_window_not_its_start(conn, database_url, monkeypatch):
    """A long backfill must leave the history looking current (issue: the 1-hour chart fell
    back to raw events after a 20-minute backfill). What happened after the backfill's first
    step must be before the state's "complete to"."""
    old = db_now(conn) - timedelta(days=2)
    run_job(conn, started_at=old, finished_at=old + timedelta(seconds=3))
    clock_after_first_step = []
    original = rollup_module._recompute_error_minutes

    def observed(step_conn, start, end):
        rows = original(step_conn, start, end)
        if not clock_after_first_step:
            clock_after_first_step.append(conn.execute("SELECT clock_timestamp()").fetchone()[0])
        return rows

    monkeypatch.setattr(rollup_module, "_recompute_error_minutes", observed)
    report = rollup(database_url, backfill=True)

    complete_to = conn.execute("SELECT last_run_at FROM jobdash_rollup_state").fetchone()[0]
    assert complete_to == report.window_end
    assert complete_to > clock_after_first_step[0]
    data = load_history(conn, "1h")
    assert data.status.recording and data.source != "raw"


def test_backfill_goes_a_day_per_step_and_equals_one_pass(conn, database_url):
    now = db_now(conn)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    # Across two midnights, one attempt running over midnight, and ids out of `at` order.
    day_ago, two_days_ago, evening = (
        midnight - timedelta(days=1), midnight - timedelta(days=2), midnight - timedelta(hours=3)
    )
    minute = timedelta(minutes=1)
    run_job(conn, started_at=day_ago - minute, finished_at=day_ago + 2 * minute)
    run_job(conn, started_at=two_days_ago, finished_at=two_days_ago)
    run_job(
        conn, outcome="failed", started_at=evening, finished_at=evening + timedelta(seconds=1),
        retries=1,
    )  # fmt: skip
    t0 = _minutes_ago(conn, 1)
    run_job(conn, started_at=t0, finished_at=t0 + timedelta(milliseconds=5))
    steps = []

    with psycopg.connect(database_url, autocommit=True) as c:
        report = rollup_module.run_rollup(c, backfill=True, progress=steps.append)

    assert len(steps) >= 2  # 3 unless this runs in the first minute after midnight
    assert [(s.index, s.total) for s in steps] == [(i + 1, len(steps)) for i in range(len(steps))]
    assert steps[0].start == two_days_ago
    assert [s.start for s in steps[1:]] == [s.end for s in steps[:-1]]
    assert all(s.end <= s.start + timedelta(days=1) for s in steps)
    whole = {
        "start": report.window_start, "end": report.window_end,
        "floor_id": 0, "ceiling_id": NO_CEILING_ID,
    }  # fmt: skip
    stored = _buckets(
        conn, "SELECT * FROM jobdash_history_minute WHERE bucket < %(end)s", whole
    )
    assert stored == _buckets(conn, REFERENCE_EVENT_BUCKETS_SQL, whole)
    assert conn.execute(
        "SELECT sum(succeeded), sum(failed), sum(retried) FROM jobdash_history_hour"
    ).fetchone() == (3, 1, 1)


def test_window_starts_where_the_previous_run_left_open_transactions():
    now = datetime(2026, 1, 5, 12, 0, 30, tzinfo=UTC)
    # A transaction open since 11:40 when the last run ended at 11:59:30 may commit events
    # stamped 11:40 at any time: the next run must recompute from there, even after it closed.
    left = recompute_from(now - timedelta(minutes=1), now - timedelta(minutes=20, seconds=30))
    assert left == now - timedelta(minutes=20, seconds=30)
    assert window_start(now, left) == datetime(2026, 1, 5, 11, 40, tzinfo=UTC)
    # Nothing open: only the trailing window (the previous run's end is inside it).
    quiet = recompute_from(now - timedelta(minutes=1), None)
    assert window_start(now, quiet) == (now - TRAILING_WINDOW).replace(second=0)
    # Bounded: a transaction open for hours widens by at most the lookback.
    ancient = recompute_from(now, now - timedelta(hours=5))
    assert ancient == now - MAX_OPEN_TRANSACTION_LOOKBACK
    # A gap since the last run is caught up on.
    assert window_start(now, now - timedelta(hours=3)) == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_backfill_chunks_split_at_utc_midnight():
    first = datetime(2026, 1, 1, 22, 15, 42, tzinfo=UTC)
    until = datetime(2026, 1, 3, 6, 30, tzinfo=UTC)
    assert backfill_chunks(first, until) == [
        (datetime(2026, 1, 1, 22, 15, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)),
        (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)),
        (datetime(2026, 1, 3, tzinfo=UTC), until),
    ]
    assert backfill_chunks(until, until) == []
