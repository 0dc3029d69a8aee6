"""The pre-aggregated levels the charts read: per-queue history, error-group days.

Each level must equal the finer rows it is built from (and, for error groups, the raw
errors) over the same ranges, through rollups, backfills and retention.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobdash.app.read.history import (
    RANGES,
    error_group_split,
    load_error_groups,
    load_history,
    query_params,
    throughput_source,
)
from jobdash.core.history_tables import HISTOGRAM_COLUMNS
from jobdash.jobs.maintenance.rollup import covering_days, run_maintenance
from tests.history_helpers import db_now, defer_job, rollup, run_job

METRICS = (
    "started, succeeded, failed, retried, cancelled, aborted, duration_count, "
    "round(duration_sum_ms::numeric, 3), " + ", ".join(HISTOGRAM_COLUMNS)
)
SUMMED = (
    "sum(started), sum(succeeded), sum(failed), sum(retried), sum(cancelled), sum(aborted), "
    "sum(duration_count), round(sum(duration_sum_ms)::numeric, 3), "
    + ", ".join(f"sum({c})" for c in HISTOGRAM_COLUMNS)
)


def _rows(conn: psycopg.Connection, query: str) -> dict[tuple, tuple]:
    return {r[:2]: tuple(int(v) for v in r[2:]) for r in conn.execute(query).fetchall()}


def _assert_queue_levels_match(conn: psycopg.Connection) -> None:
    for level in ("minute", "hour"):
        by_task = _rows(
            conn,
            f"SELECT bucket, queue_name, {SUMMED} FROM jobdash_history_{level} GROUP BY 1, 2",
        )
        by_queue = _rows(
            conn, f"SELECT bucket, queue_name, {METRICS} FROM jobdash_history_queue_{level}"
        )
        assert by_queue == by_task
        assert by_queue  # the comparison saw rows


def _fail(conn: psycopg.Connection, at: datetime, queue: str, task: str, exc: str, msg: str):
    job_id = defer_job(conn, queue, task)
    conn.execute(
        "INSERT INTO jobdash_job_errors (job_id, attempt, exception_type, message, traceback,"
        " will_retry, recorded_at) VALUES (%s, 1, %s, %s, '', false, %s)",
        (job_id, exc, msg, at),
    )
    return job_id


def _raw_error_counts(conn: psycopg.Connection, start: datetime, end: datetime) -> Counter:
    rows = conn.execute(
        "SELECT j.task_name, r.exception_type, count(*) FROM jobdash_job_errors r"
        " JOIN procrastinate_jobs j ON j.id = r.job_id"
        " WHERE NOT r.will_retry AND r.recorded_at >= %s AND r.recorded_at < %s GROUP BY 1, 2",
        (start, end),
    ).fetchall()
    return Counter({(t, e): n for t, e, n in rows})


# --- pure rules -------------------------------------------------------------------------


def test_error_group_split_uses_whole_units_inside_the_range():
    start = datetime(2025, 3, 1, 10, 17, 30, tzinfo=UTC)
    end = datetime(2025, 3, 4, 8, 5, tzinfo=UTC)
    assert error_group_split(start, end, timedelta(days=1)) == (
        datetime(2025, 3, 2, tzinfo=UTC),
        datetime(2025, 3, 4, tzinfo=UTC),
    )
    assert error_group_split(start, end, timedelta(hours=1)) == (
        datetime(2025, 3, 1, 11, tzinfo=UTC),
        datetime(2025, 3, 4, 8, tzinfo=UTC),
    )
    aligned = datetime(2025, 3, 2, tzinfo=UTC)
    assert error_group_split(aligned, aligned + timedelta(days=2), timedelta(days=1)) == (
        aligned,
        aligned + timedelta(days=2),
    )
    # No whole unit inside: the fine rows cover everything.
    short_end = start + timedelta(hours=5)
    assert error_group_split(start, short_end, timedelta(days=1)) == (short_end, short_end)


def test_covering_days_are_whole_days():
    start = datetime(2025, 3, 1, 23, 50, tzinfo=UTC)
    assert covering_days(start, start + timedelta(minutes=20)) == (
        datetime(2025, 3, 1, tzinfo=UTC),
        datetime(2025, 3, 3, tzinfo=UTC),
    )
    midnight = datetime(2025, 3, 2, tzinfo=UTC)
    assert covering_days(start, midnight) == (
        datetime(2025, 3, 1, tzinfo=UTC),
        midnight,
    )


def test_throughput_reads_per_queue_rows_unless_a_task_is_filtered():
    assert throughput_source("hour", None, True, "90d") == "queue_hour"
    assert throughput_source("minute", None, True, "24h") == "queue_minute"
    assert throughput_source("hour", "t.send", True, "90d") == "hour"
    assert throughput_source("minute", None, False, "1h") == "raw"


# --- against PostgreSQL -----------------------------------------------------------------


def test_schema_has_one_column_per_histogram_bin(conn):
    for table in ("minute", "hour", "queue_minute", "queue_hour"):
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " AND column_name LIKE 'duration_bin_%%' ORDER BY ordinal_position",
                (f"jobdash_history_{table}",),
            ).fetchall()
        ]
        assert tuple(columns) == HISTOGRAM_COLUMNS


def test_queue_level_equals_tasks_summed_through_rollup_and_retention(conn, database_url):
    now = db_now(conn)
    for minutes_ago, queue, task, outcome, ms in [
        (3, "mail", "t.send", "succeeded", 40),
        (3, "mail", "t.digest", "failed", 900),
        (3, "batch", "t.crunch", "succeeded", 12_000),
        (70, "mail", "t.send", "aborted", 5),
        (60 * 24 * 20, "mail", "t.digest", "succeeded", 300),  # past minute retention
    ]:
        at = now - timedelta(minutes=minutes_ago)
        run_job(
            conn,
            queue=queue,
            task=task,
            outcome=outcome,
            started_at=at,
            finished_at=at + timedelta(milliseconds=ms),
            retries=1 if task == "t.send" else 0,
        )
    rollup(database_url, backfill=True)
    _assert_queue_levels_match(conn)
    rollup(database_url)  # the trailing-window recompute keeps them equal
    _assert_queue_levels_match(conn)

    with psycopg.connect(database_url, autocommit=True) as c:
        run_maintenance(c, minute_retention_days=14, hour_retention_days=400)
    assert conn.execute(
        "SELECT count(*) FROM jobdash_history_queue_minute WHERE bucket < now() - interval '14d'"
    ).fetchone() == (0,)
    queue_hours = conn.execute(
        "SELECT sum(succeeded), sum(failed), sum(aborted) FROM jobdash_history_queue_hour"
    ).fetchone()
    assert queue_hours == (3, 1, 1)

    # The charts: unfiltered (per-queue rows) and task-filtered (per-task rows) agree.
    all_tasks = load_history(conn, "90d").throughput
    assert all_tasks["succeeded"].sum() == 3 and all_tasks["failed"].sum() == 1
    per_task = [load_history(conn, "90d", task=t).throughput for t in ("t.send", "t.digest")]
    assert sum(int(f["succeeded"].sum()) for f in per_task) == 2
    day = load_history(conn, "24h", queue="mail")
    assert day.source == "queue_minute" and day.level == "minute"
    assert day.throughput["retried"].sum() == 2
    assert day.throughput["duration_count"].sum() == 5  # 2 retried attempts + 3 ends


def test_error_group_days_equal_raw_errors_and_survive_retention(conn, database_url):
    now = db_now(conn)
    ats = [now - timedelta(days=d, hours=h) for d in (1, 2, 3, 20) for h in (1, 5)]
    for i, at in enumerate(ats):
        _fail(conn, at, "mail", "t.send", "ValueError" if i % 3 else "KeyError", f"boom {i}")
    rollup(database_url, backfill=True)

    def day_totals() -> Counter:
        rows = conn.execute(
            "SELECT bucket, task_name, exception_type, failures FROM jobdash_error_groups_day"
        ).fetchall()
        return Counter({(b, t, e): n for b, t, e, n in rows})

    expected = Counter()
    for i, at in enumerate(ats):
        day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        expected[day, "t.send", "ValueError" if i % 3 else "KeyError"] += 1
    assert day_totals() == expected

    with psycopg.connect(database_url, autocommit=True) as c:
        run_maintenance(c, minute_retention_days=14, hour_retention_days=400)
    assert day_totals() == expected
    with psycopg.connect(database_url, autocommit=True) as c:
        run_maintenance(c, minute_retention_days=14, hour_retention_days=10)
    assert all(day >= now - timedelta(days=11) for day, _, _ in day_totals())


@pytest.mark.parametrize("range_name", ["24h", "7d", "30d", "90d"])
def test_error_groups_equal_raw_errors_of_the_range(conn, database_url, range_name):
    now = db_now(conn)
    span = RANGES[range_name].span
    # Spread over the range, away from its edges (bucket-aligned edges may differ from raw).
    offsets = [span * f for f in (0.05, 0.3, 0.31, 0.5, 0.77, 0.9)] + [timedelta(minutes=5)]
    for i, offset in enumerate(offsets):
        exc = "ValueError" if i % 2 else "KeyError"
        _fail(conn, now - offset, "mail", f"t.{i % 3}", exc, f"message {i}")
    latest_message = "message 6"  # the newest failure (5 minutes ago) of (t.0, KeyError)
    _fail(conn, now - span - timedelta(days=1), "mail", "t.0", "KeyError", "too old")
    rollup(database_url, backfill=True)

    params = query_params(RANGES[range_name], now - span, now)
    source = "minute" if range_name == "24h" else "hour"
    groups = load_error_groups(conn, source, params)
    got = Counter({(r.task, r.exception_type): r.failures for r in groups.itertuples()})
    assert got == _raw_error_counts(conn, now - span, now)
    assert groups["share"].sum() == pytest.approx(1.0)
    newest = groups[(groups["task"] == "t.0") & (groups["exception_type"] == "KeyError")]
    assert newest["example_message"].tolist() == [latest_message]
    assert newest["last_seen"].iloc[0] > now - timedelta(minutes=6)


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    minutes_ago=st.lists(st.integers(min_value=1, max_value=3 * 24 * 60), max_size=12),
    start_hours_ago=st.integers(min_value=2, max_value=72),
)
def test_property_split_error_groups_equal_fine_rows(
    conn, database_url, minutes_ago, start_hours_ago
):
    conn.execute(
        "TRUNCATE procrastinate_jobs, jobdash_job_errors, jobdash_error_groups_minute,"
        " jobdash_error_groups_hour, jobdash_error_groups_day CASCADE"
    )
    now = db_now(conn)
    for i, ago in enumerate(minutes_ago):
        _fail(conn, now - timedelta(minutes=ago), "q", f"t.{i % 2}", "E", f"m{i}")
    rollup(database_url, backfill=True)
    start = now - timedelta(hours=start_hours_ago, minutes=17)
    for source, fine in (("minute", "minute"), ("hour", "hour")):
        params = query_params(RANGES["90d"], start, now)
        got = {
            (r.task, r.exception_type): (r.failures, r.first_seen, r.last_seen)
            for r in load_error_groups(conn, source, params).itertuples()
        }
        rows = conn.execute(
            "SELECT task_name, exception_type, sum(failures), min(first_seen), max(last_seen)"
            f" FROM jobdash_error_groups_{fine} WHERE bucket >= %s AND bucket < %s GROUP BY 1, 2",
            (start, now),
        ).fetchall()
        assert got == {(t, e): (n, f, last) for t, e, n, f, last in rows}
