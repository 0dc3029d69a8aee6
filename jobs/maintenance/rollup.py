"""Fold `procrastinate_events` into per-minute history buckets, and keep them trimmed.

Correctness rests on four choices:
- Whole buckets are recomputed (delete + insert) inside one transaction: a crash leaves the
  previous state, a re-run gives the same rows.
- Each run recomputes from where the previous run left data that may still change
  (`recompute_from`: the oldest transaction open when it read the events, whose events carry
  its start time as `at` and may commit later), and at least TRAILING_WINDOW.
- `last_run_at` is the end of the window a run made complete, what readers call "recorded".
- A transaction-level advisory lock serialises runs; a second concurrent run skips.

A backfill rebuilds the whole range a day at a time, each day its own transaction, then ends
with an ordinary run, so its state is as fresh as a regular run's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from jobdash.core.history_tables import (
    EVENT_BUCKETS_SQL,
    EVENT_COLUMNS,
    FLOOR_ID_SQL,
    HISTORY_COLUMNS,
    METRIC_SUMS,
    NO_CEILING_ID,
    QUEUE_HISTORY_COLUMNS,
)

# Arbitrary, fixed: one rollup at a time per database ("jdru").
ROLLUP_LOCK_KEY = 0x6A647275
# Late commits are covered by recompute_from; this margin only absorbs small clock steps.
TRAILING_WINDOW = timedelta(minutes=2)
# The very first run records the last hour, so the 1-hour chart is whole from the start.
FIRST_RUN_WINDOW = timedelta(hours=1)
# How far back an open transaction, or a gap since the last run, may widen the window.
MAX_OPEN_TRANSACTION_LOOKBACK = timedelta(hours=1)
MAX_CATCH_UP = timedelta(hours=24)
MARK_RETENTION = timedelta(hours=3)
DELETED_EVENTS_RETENTION = timedelta(hours=2)
# Queues with history rows this recent get a depth sample even when empty (DEPTH_SAMPLE_SQL),
# however short the window a run recomputes.
QUEUES_SEEN_RECENTLY = timedelta(minutes=10)
# A backfill recomputes this much history per transaction.
BACKFILL_CHUNK = timedelta(days=1)

# Per-queue minute rows (all tasks summed) of the per-task minute rows in [start, end).
QUEUE_MINUTES_SQL = f"""
    INSERT INTO jobdash_history_queue_minute ({QUEUE_HISTORY_COLUMNS})
    SELECT bucket, queue_name, {METRIC_SUMS}
      FROM jobdash_history_minute
     WHERE bucket >= %(start)s AND bucket < %(end)s
     GROUP BY 1, 2
"""

# Final failures (will_retry = false) per minute, task and exception type.
ERROR_BUCKETS_SQL = """
SELECT date_trunc('minute', r.recorded_at) AS bucket,
       coalesce(j.queue_name, d.queue_name, '?') AS queue_name,
       coalesce(j.task_name, d.task_name, '?') AS task_name,
       r.exception_type,
       count(*)::int AS failures,
       min(r.recorded_at) AS first_seen,
       max(r.recorded_at) AS last_seen,
       left((array_agg(r.message ORDER BY r.recorded_at DESC, r.id DESC))[1], 1000),
       (array_agg(r.job_id ORDER BY r.recorded_at DESC, r.id DESC))[1]
  FROM jobdash_job_errors r
  LEFT JOIN procrastinate_jobs j ON j.id = r.job_id
  LEFT JOIN LATERAL (
      SELECT queue_name, task_name FROM jobdash_deleted_job_events
       WHERE job_id = r.job_id LIMIT 1
  ) d ON j.id IS NULL
 WHERE r.recorded_at >= %(start)s AND r.recorded_at < %(end)s AND NOT r.will_retry
 GROUP BY 1, 2, 3, 4
"""
ERROR_COLUMNS = (
    "bucket, queue_name, task_name, exception_type, failures, first_seen, last_seen, "
    "example_message, example_job_id"
)

# Current depth per queue, as one sample. Queues seen recently but now empty get a 0 row, so
# charts drop to zero instead of stopping. Oldest-ready age: scheduled jobs are ready since
# scheduled_at, others since their `deferred` event (the lowest id is the oldest).
DEPTH_SAMPLE_SQL = """
INSERT INTO jobdash_queue_depth_minute (
    bucket, queue_name, samples, ready_sum, scheduled_sum, doing_sum,
    ready_max, scheduled_max, doing_max, oldest_ready_age_max_s)
WITH counts AS (
    SELECT queue_name,
           count(*) FILTER (WHERE status = 'todo'
                              AND (scheduled_at IS NULL OR scheduled_at <= now())) AS ready,
           count(*) FILTER (WHERE status = 'todo' AND scheduled_at > now()) AS scheduled,
           count(*) FILTER (WHERE status = 'doing') AS doing,
           min(scheduled_at) FILTER (WHERE status = 'todo' AND scheduled_at <= now())
               AS oldest_scheduled,
           min(id) FILTER (WHERE status = 'todo' AND scheduled_at IS NULL) AS oldest_unscheduled_id
      FROM procrastinate_jobs
     WHERE status IN ('todo', 'doing')
     GROUP BY queue_name
), recent AS (
    SELECT DISTINCT queue_name FROM jobdash_queue_depth_minute
     WHERE bucket >= now() - interval '1 hour' AND ready_max + scheduled_max + doing_max > 0
    UNION
    SELECT DISTINCT queue_name FROM jobdash_history_minute WHERE bucket >= %(start)s
)
SELECT date_trunc('minute', now()), q.queue_name, 1,
       coalesce(c.ready, 0), coalesce(c.scheduled, 0), coalesce(c.doing, 0),
       coalesce(c.ready, 0), coalesce(c.scheduled, 0), coalesce(c.doing, 0),
       extract(epoch FROM now() - least(
           c.oldest_scheduled,
           (SELECT min(e.at) FROM procrastinate_events e
             WHERE e.job_id = c.oldest_unscheduled_id AND e.type = 'deferred')))
  FROM (SELECT queue_name FROM counts UNION SELECT queue_name FROM recent) q
  LEFT JOIN counts c USING (queue_name)
ON CONFLICT (bucket, queue_name) DO UPDATE SET
    samples = 1, ready_sum = excluded.ready_sum, scheduled_sum = excluded.scheduled_sum,
    doing_sum = excluded.doing_sum, ready_max = excluded.ready_max,
    scheduled_max = excluded.scheduled_max, doing_max = excluded.doing_max,
    oldest_ready_age_max_s = excluded.oldest_ready_age_max_s
"""

def _coarser_error_groups_sql(unit: str, source: str) -> str:
    """Error groups of `jobdash_error_groups_<source>` rows in [start, end), summed per `unit`
    into `jobdash_error_groups_<unit>` (the example is the latest one)."""
    return f"""
        INSERT INTO jobdash_error_groups_{unit} ({ERROR_COLUMNS})
        SELECT date_trunc('{unit}', bucket), queue_name, task_name, exception_type,
               sum(failures), min(first_seen), max(last_seen),
               (array_agg(example_message ORDER BY last_seen DESC))[1],
               (array_agg(example_job_id ORDER BY last_seen DESC))[1]
          FROM jobdash_error_groups_{source}
         WHERE bucket >= %(start)s AND bucket < %(end)s
         GROUP BY 1, 2, 3, 4
    """


# Hour rows recomputed from the minute rows of whole hours in [start, end).
HOUR_FROM_MINUTES_SQL = {
    "history": f"""
        INSERT INTO jobdash_history_hour ({HISTORY_COLUMNS})
        SELECT date_trunc('hour', bucket), queue_name, task_name, {METRIC_SUMS}
          FROM jobdash_history_minute
         WHERE bucket >= %(start)s AND bucket < %(end)s
         GROUP BY 1, 2, 3
    """,
    "history_queue": f"""
        INSERT INTO jobdash_history_queue_hour ({QUEUE_HISTORY_COLUMNS})
        SELECT date_trunc('hour', bucket), queue_name, {METRIC_SUMS}
          FROM jobdash_history_queue_minute
         WHERE bucket >= %(start)s AND bucket < %(end)s
         GROUP BY 1, 2
    """,
    "queue_depth": """
        INSERT INTO jobdash_queue_depth_hour
        SELECT date_trunc('hour', bucket), queue_name, sum(samples), sum(ready_sum),
               sum(scheduled_sum), sum(doing_sum), max(ready_max), max(scheduled_max),
               max(doing_max), max(oldest_ready_age_max_s)
          FROM jobdash_queue_depth_minute
         WHERE bucket >= %(start)s AND bucket < %(end)s
         GROUP BY 1, 2
    """,
    "error_groups": _coarser_error_groups_sql("hour", "minute"),
}
BUCKET_TABLES = ("history", "history_queue", "queue_depth", "error_groups")
# Error groups also have day rows (summed over whole ranges, see migration 004), recomputed
# from the hour rows of whole days in [start, end).
ERROR_DAYS_FROM_HOURS_SQL = _coarser_error_groups_sql("day", "hour")

_EVENT_TYPES = ", ".join(f"'{t}'" for t in EVENT_COLUMNS)
WINDOW_INPUTS_SQL = """
SELECT now(),
       (SELECT coalesce(recompute_from, last_run_at) FROM jobdash_rollup_state),
       (SELECT min(xact_start) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND backend_type = 'client backend' AND xact_start IS NOT NULL)
"""
# Where each UTC day's counted events lie in id order: a backfill chunk reads its day by
# primary key (there is no index on `at`), after one sequential pass for all days.
BACKFILL_DAYS_SQL = f"""
SELECT date_trunc('day', at), min(at), min(id), max(id)
  FROM procrastinate_events WHERE type IN ({_EVENT_TYPES})
 GROUP BY 1 ORDER BY 1
"""
BACKFILL_OTHER_START_SQL = """
SELECT least((SELECT min(at) FROM jobdash_deleted_job_events),
             (SELECT min(recorded_at) FROM jobdash_job_errors))
"""
LAST_EVENT_ID_SQL = """
SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
  FROM procrastinate_events_id_seq
"""
UPDATE_STATE_SQL = """
UPDATE jobdash_rollup_state
   SET last_run_at = %(end)s, recompute_from = %(recompute_from)s, last_window_start = %(start)s,
       last_backfill_at = CASE WHEN %(backfill)s THEN %(end)s ELSE last_backfill_at END
"""


@dataclass(frozen=True)
class RollupReport:
    skipped: bool
    window_start: datetime | None = None
    window_end: datetime | None = None
    history_rows: int = 0
    error_rows: int = 0
    queues_sampled: int = 0

    def summary(self) -> str:
        if self.skipped:
            return "skipped: another rollup is running"
        assert self.window_start is not None and self.window_end is not None
        same_day = self.window_start.date() == self.window_end.date()
        end = f"{self.window_end:%H:%M}" if same_day else f"{self.window_end:%Y-%m-%d %H:%M}"
        return (
            f"recomputed {self.window_start:%Y-%m-%d %H:%M} to {end} UTC: "
            f"{self.history_rows} minute buckets, {self.error_rows} error groups, "
            f"{self.queues_sampled} queues sampled"
        )


@dataclass(frozen=True)
class BackfillChunk:
    """One committed step of a backfill (for progress output)."""

    index: int
    total: int
    start: datetime
    end: datetime
    history_rows: int
    error_rows: int
    seconds: float

    def summary(self) -> str:
        return (
            f"backfilled {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC "
            f"({self.index} of {self.total}): {self.history_rows} minute buckets, "
            f"{self.error_rows} error groups in {self.seconds:.1f} s"
        )


def run_rollup(
    conn: psycopg.Connection,
    *,
    backfill: bool = False,
    progress: Callable[[BackfillChunk], None] | None = None,
) -> RollupReport:
    """Recompute the recent window in one transaction; with backfill, first rebuild the whole
    history from the oldest event still present, a day per transaction (`conn` must be in
    autocommit mode). `progress` is called after each committed backfill day."""
    if not backfill:
        return _run_window(conn)
    return _run_backfill(conn, progress)


def _begin(conn: psycopg.Connection) -> None:
    conn.execute("SET LOCAL timezone = 'UTC'")
    # A backfill day, or a window before every mark, is estimated above jit_above_cost:
    # compiling would take longer than running it.
    conn.execute("SET LOCAL jit = off")


def _run_window(conn: psycopg.Connection, since: datetime | None = None) -> RollupReport:
    """One ordinary run: recompute [start, now) and the queue-depth sample, in one transaction.
    `since` makes the window start there at the latest (the end of a backfill's days)."""
    with conn.transaction():
        _begin(conn)
        if since is not None:  # a backfill waits for a running rollup instead of skipping
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK_KEY,))
        elif not _try_lock(conn):
            return RollupReport(skipped=True)
        row = conn.execute(WINDOW_INPUTS_SQL).fetchone()
        assert row is not None
        end, previous_recompute_from, oldest_open_transaction = row
        start = window_start(end, previous_recompute_from)
        if since is not None:
            start = min(start, since)
        # Read the event sequence BEFORE the mark's clock time (see jobdash_rollup_marks).
        last_event_id = _last_event_id(conn)
        floor_row = conn.execute(FLOOR_ID_SQL, {"start": start}).fetchone()
        ids = (floor_row[0] if floor_row else 0, NO_CEILING_ID)
        history_rows = _recompute_minutes(conn, start, end, ids)
        error_rows = _recompute_error_minutes(conn, start, end)
        queues = _sample_queue_depth(conn, min(start, end - QUEUES_SEEN_RECENTLY))
        _recompute_hours(conn, start, end)
        conn.execute(
            "INSERT INTO jobdash_rollup_marks (taken_at, last_event_id) "
            "VALUES (clock_timestamp(), %s) ON CONFLICT DO NOTHING",
            (last_event_id,),
        )
        conn.execute(
            UPDATE_STATE_SQL,
            {
                "end": end,
                "recompute_from": recompute_from(end, oldest_open_transaction),
                "start": start,
                "backfill": since is not None,
            },
        )
    return RollupReport(False, start, end, history_rows, error_rows, queues)


def _try_lock(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (ROLLUP_LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def window_start(now: datetime, previous_recompute_from: datetime | None) -> datetime:
    """First minute to recompute: the trailing window, widened to where the previous run left
    data that may still change (bounded by MAX_CATCH_UP; older gaps need a backfill)."""
    if previous_recompute_from is None:
        return (now - FIRST_RUN_WINDOW).replace(second=0, microsecond=0)
    start = min(now - TRAILING_WINDOW, max(previous_recompute_from, now - MAX_CATCH_UP))
    return start.replace(second=0, microsecond=0)


def recompute_from(end: datetime, oldest_open_transaction: datetime | None) -> datetime:
    """Where the next run must recompute from: events before `end` are final unless a
    transaction open now writes them (with its start time as `at`), bounded by the lookback.

    Transactions open now must be covered by the NEXT run, not this one: their events are not
    visible yet, and the next run cannot know which of them committed in between.
    """
    if oldest_open_transaction is None or oldest_open_transaction >= end:
        return end
    return max(oldest_open_transaction, end - MAX_OPEN_TRANSACTION_LOOKBACK)


def _run_backfill(
    conn: psycopg.Connection, progress: Callable[[BackfillChunk], None] | None
) -> RollupReport:
    with conn.transaction():
        _begin(conn)
        row = conn.execute(WINDOW_INPUTS_SQL).fetchone()
        assert row is not None
        now, _, oldest_open_transaction = row
        # Events before `until` are all committed by now (a transaction open now writes its
        # start time as `at`, later than `until`), so the day scan below sees every one of
        # them; the closing ordinary run recomputes from `until` on.
        until = recompute_from(now, oldest_open_transaction).replace(second=0, microsecond=0)
        days = conn.execute(BACKFILL_DAYS_SQL).fetchall()
        other = conn.execute(BACKFILL_OTHER_START_SQL).fetchone()
    starts = [first_at for _, first_at, _, _ in days] + ([other[0]] if other and other[0] else [])
    chunks = backfill_chunks(min(starts), until) if starts else []
    id_ranges = {day: (lo - 1, hi) for day, _, lo, hi in days}
    history_rows = error_rows = 0
    for index, (start, end) in enumerate(chunks, 1):
        began = time.monotonic()
        ids = id_ranges.get(start.replace(hour=0, minute=0), (0, 0))  # (0, 0): no events
        with conn.transaction():
            _begin(conn)
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK_KEY,))
            chunk_rows = _recompute_minutes(conn, start, end, ids)
            chunk_errors = _recompute_error_minutes(conn, start, end)
            _recompute_hours(conn, start, end)
        history_rows += chunk_rows
        error_rows += chunk_errors
        if progress is not None:
            elapsed = time.monotonic() - began
            progress(
                BackfillChunk(index, len(chunks), start, end, chunk_rows, chunk_errors, elapsed)
            )
    report = _run_window(conn, since=until)
    return RollupReport(
        False,
        chunks[0][0] if chunks else report.window_start,
        report.window_end,
        history_rows + report.history_rows,
        error_rows + report.error_rows,
        report.queues_sampled,
    )


def backfill_chunks(first: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) steps from the minute of `first` to `until`, split at UTC day boundaries
    (so a step reads one day's id range and recomputes whole error-group days)."""
    start = first.astimezone(UTC).replace(second=0, microsecond=0)
    chunks = []
    while start < until:
        day = start.replace(hour=0, minute=0)
        end = min(day + BACKFILL_CHUNK, until)
        chunks.append((start, end))
        start = end
    return chunks


def _last_event_id(conn: psycopg.Connection) -> int:
    row = conn.execute(LAST_EVENT_ID_SQL).fetchone()
    return int(row[0]) if row else 0


def _recompute_minutes(
    conn: psycopg.Connection, start: datetime, end: datetime, ids: tuple[int, int]
) -> int:
    """Minute rows of [start, end) from the events with ids[0] < id <= ids[1]."""
    window = {"start": start, "end": end}
    conn.execute(
        "DELETE FROM jobdash_history_minute WHERE bucket >= %(start)s AND bucket < %(end)s",
        window,
    )
    cur = conn.execute(
        f"INSERT INTO jobdash_history_minute ({HISTORY_COLUMNS}) {EVENT_BUCKETS_SQL}",
        {**window, "floor_id": ids[0], "ceiling_id": ids[1]},
    )
    conn.execute(
        "DELETE FROM jobdash_history_queue_minute WHERE bucket >= %(start)s AND bucket < %(end)s",
        window,
    )
    conn.execute(QUEUE_MINUTES_SQL, window)
    return cur.rowcount


def _recompute_error_minutes(conn: psycopg.Connection, start: datetime, end: datetime) -> int:
    window = {"start": start, "end": end}
    conn.execute(
        "DELETE FROM jobdash_error_groups_minute WHERE bucket >= %(start)s AND bucket < %(end)s",
        window,
    )
    cur = conn.execute(
        f"INSERT INTO jobdash_error_groups_minute ({ERROR_COLUMNS}) {ERROR_BUCKETS_SQL}", window
    )
    return cur.rowcount


def _sample_queue_depth(conn: psycopg.Connection, seen_since: datetime) -> int:
    """One depth sample; queues with history rows since `seen_since` get one even when empty."""
    return conn.execute(DEPTH_SAMPLE_SQL, {"start": seen_since}).rowcount


def covering_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The whole hours [first, last) that contain any instant of [start, end)."""
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    last = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if last < end:
        last += timedelta(hours=1)
    return first, max(last, first)


def _recompute_hours(conn: psycopg.Connection, start: datetime, end: datetime) -> None:
    # Whole hours: a backfill day may end mid-hour, before minutes a regular run already wrote.
    hour_start, hour_end = covering_hours(start, end)
    for table in BUCKET_TABLES:
        conn.execute(
            f"DELETE FROM jobdash_{table}_hour WHERE bucket >= %s AND bucket < %s",
            (hour_start, hour_end),
        )
        conn.execute(HOUR_FROM_MINUTES_SQL[table], {"start": hour_start, "end": hour_end})
    _recompute_error_days(conn, start, end)


def covering_days(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The whole UTC days [first, last) that contain any instant of [start, end)."""
    first = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    last = end.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if last < end:
        last += timedelta(days=1)
    return first, max(last, first)


def _recompute_error_days(conn: psycopg.Connection, start: datetime, end: datetime) -> None:
    # Whole days on both sides, so the delete and the insert cover the same day rows.
    day_start, day_end = covering_days(start, end)
    conn.execute(
        "DELETE FROM jobdash_error_groups_day WHERE bucket >= %s AND bucket < %s",
        (day_start, day_end),
    )
    conn.execute(ERROR_DAYS_FROM_HOURS_SQL, {"start": day_start, "end": day_end})


def run_maintenance(
    conn: psycopg.Connection, *, minute_retention_days: float, hour_retention_days: float
) -> None:
    """Downsample minutes past their retention into hours, then drop them; trim hours."""
    with conn.transaction():
        conn.execute("SET LOCAL timezone = 'UTC'")
        # Same lock as the rollup: hours must not be recomputed while minutes are dropped.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK_KEY,))
        oldest_minutes = ", ".join(
            f"(SELECT date_trunc('hour', min(bucket)) FROM jobdash_{table}_minute)"
            for table in BUCKET_TABLES
        )
        row = conn.execute(
            f"SELECT date_trunc('hour', now() - %s::interval), {oldest_minutes}",
            (timedelta(days=minute_retention_days),),
        ).fetchone()
        assert row is not None
        cutoff = row[0]
        for table, oldest in zip(BUCKET_TABLES, row[1:], strict=True):
            if oldest is None or oldest >= cutoff:
                continue
            # Cutoff is hour-aligned: hours before it still have all their minutes here.
            conn.execute(
                f"DELETE FROM jobdash_{table}_hour WHERE bucket >= %s AND bucket < %s",
                (oldest, cutoff),
            )
            conn.execute(HOUR_FROM_MINUTES_SQL[table], {"start": oldest, "end": cutoff})
            if table == "error_groups":
                _recompute_error_days(conn, oldest, cutoff)
            conn.execute(f"DELETE FROM jobdash_{table}_minute WHERE bucket < %s", (cutoff,))
        for table in (*(f"{t}_hour" for t in BUCKET_TABLES), "error_groups_day"):
            conn.execute(
                f"DELETE FROM jobdash_{table} WHERE bucket < now() - %s::interval",
                (timedelta(days=hour_retention_days),),
            )
        conn.execute(
            "DELETE FROM jobdash_rollup_marks WHERE taken_at < now() - %s::interval "
            "AND taken_at < (SELECT max(taken_at) FROM jobdash_rollup_marks)",
            (MARK_RETENTION,),
        )
        conn.execute(
            "DELETE FROM jobdash_deleted_job_events WHERE at < now() - %s::interval",
            (DELETED_EVENTS_RETENTION,),
        )
