"""Chart data of the Throughput history page and of `jobdash history`, from the bucket tables.

Each range reads the coarsest table that still gives its bucket size, so a chart has at most
~500 points and a 90-day query reads ~2,000 hour rows per (queue, task), never raw events.
When no rollup ran recently, the last hour is computed from the raw events instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, TypedDict, cast

import pandas as pd
import psycopg

from jobdash.core.history_tables import (
    EVENT_BUCKETS_SQL,
    FLOOR_ID_SQL,
    NO_CEILING_ID,
    histogram_array_sql,
    percentile_from_histogram,
)
from jobdash.core.rows import fetch_all, fetch_one, fetch_optional


@dataclass(frozen=True)
class HistoryRange:
    name: str
    span: timedelta
    bucket: timedelta


RANGES: dict[str, HistoryRange] = {
    r.name: r
    for r in (
        HistoryRange("1h", timedelta(hours=1), timedelta(minutes=1)),
        HistoryRange("6h", timedelta(hours=6), timedelta(minutes=1)),
        HistoryRange("24h", timedelta(hours=24), timedelta(minutes=5)),
        HistoryRange("7d", timedelta(days=7), timedelta(hours=1)),
        HistoryRange("30d", timedelta(days=30), timedelta(hours=2)),
        HistoryRange("90d", timedelta(days=90), timedelta(hours=6)),
    )
}
DEFAULT_RANGE = "24h"
# A rollup older than this means no worker is recording history.
RECORDING_STALE_AFTER = timedelta(minutes=5)
ERROR_GROUPS_LIMIT = 20

THROUGHPUT_COLUMNS = [
    "bucket_start", "queue", "started", "succeeded", "failed", "retried", "cancelled", "aborted",
    "failure_rate", "duration_count", "avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms",
]  # fmt: skip
DEPTH_COLUMNS = ["bucket_start", "queue", "ready", "scheduled", "doing", "latency_s"]
ERROR_GROUP_COLUMNS = [
    "task", "exception_type", "failures", "share", "first_seen", "last_seen",
    "example_message", "example_job_id",
]  # fmt: skip


def resolution(history_range: HistoryRange, minute_retention_days: float) -> str:
    """'minute' or 'hour': which tables can serve this range at its bucket size."""
    fits_minutes = history_range.span <= timedelta(days=minute_retention_days)
    return "minute" if history_range.bucket < timedelta(hours=1) and fits_minutes else "hour"


_QUEUE_FILTER = """
   AND (%(queue)s::text IS NULL OR queue_name = %(queue)s)"""
_FILTERS = (
    _QUEUE_FILTER
    + """
   AND (%(task)s::text IS NULL OR task_name = %(task)s)
"""
)
_THROUGHPUT_SELECT = f"""
SELECT date_bin(%(step)s::interval, bucket, 'epoch'::timestamptz) AS bucket_start,
       {{queue}} AS queue, sum(started)::bigint, sum(succeeded)::bigint, sum(failed)::bigint,
       sum(retried)::bigint, sum(cancelled)::bigint, sum(aborted)::bigint,
       sum(duration_count)::bigint, sum(duration_sum_ms), max(duration_max_ms),
       {histogram_array_sql()}
  FROM {{source}}
 WHERE bucket >= %(start)s AND bucket < %(end)s {{filters}}
 GROUP BY 1, 2 ORDER BY 1, 2
"""
# name -> (FROM clause, filters it supports)
_SOURCES = {
    "minute": ("jobdash_history_minute", _FILTERS),
    "hour": ("jobdash_history_hour", _FILTERS),
    # Without a task filter: the per-queue rows (tasks summed), far fewer rows to read.
    "queue_minute": ("jobdash_history_queue_minute", _QUEUE_FILTER),
    "queue_hour": ("jobdash_history_queue_hour", _QUEUE_FILTER),
    # No rollup running: the same aggregates straight from the raw events (last hour only).
    "raw": (f"({EVENT_BUCKETS_SQL}) AS raw_buckets", _FILTERS),
}
# (source, per queue?) -> SQL; all queues summed unless per queue.
THROUGHPUT_SQL = {
    (name, per_queue): _THROUGHPUT_SELECT.format(
        source=source, filters=filters, queue="queue_name" if per_queue else "NULL::text"
    )
    for name, (source, filters) in _SOURCES.items()
    for per_queue in (False, True)
}


def throughput_source(source: str, task: str | None, recording: bool, range_name: str) -> str:
    """Which THROUGHPUT_SQL source serves a chart (pure)."""
    if range_name == "1h" and not recording:
        return "raw"
    return source if task is not None else f"queue_{source}"


_DEPTH_SELECT = """
SELECT date_bin(%(step)s::interval, bucket, 'epoch'::timestamptz) AS bucket_start, queue_name,
       sum(ready_sum)::float / sum(samples), sum(scheduled_sum)::float / sum(samples),
       sum(doing_sum)::float / sum(samples), max(oldest_ready_age_max_s)
  FROM {source}
 WHERE bucket >= %(start)s AND bucket < %(end)s
   AND (%(queue)s::text IS NULL OR queue_name = %(queue)s)
 GROUP BY 1, 2 ORDER BY 1, 2
"""
DEPTH_SQL = {
    "minute": _DEPTH_SELECT.format(source="jobdash_queue_depth_minute"),
    "hour": _DEPTH_SELECT.format(source="jobdash_queue_depth_hour"),
}
# Error groups are sums over the whole range, so they read the coarsest rows that fit inside
# it: coarse rows for [coarse_start, coarse_end), fine rows only for the ragged ends (see
# error_group_split). The example of a group is taken from its latest row after the top-N
# is known, instead of sorting every row of the range with array_agg(… ORDER BY …).
_ERROR_PART = f"""
    SELECT task_name, exception_type, failures, first_seen, last_seen, example_message,
           example_job_id
      FROM {{table}}
     WHERE bucket >= %({{lower}})s AND bucket < %({{upper}})s {_FILTERS}"""
_ERROR_GROUPS_SELECT = """
WITH parts AS ({head}
    UNION ALL{middle}
    UNION ALL{tail}
), groups AS (
    SELECT task_name, exception_type, sum(failures)::bigint AS failures,
           min(first_seen) AS first_seen, max(last_seen) AS last_seen
      FROM parts GROUP BY 1, 2
), top AS (
    SELECT groups.*, failures::float / nullif(sum(failures) OVER (), 0) AS share
      FROM groups ORDER BY failures DESC, last_seen DESC LIMIT %(limit)s
), examples AS (
    SELECT DISTINCT ON (p.task_name, p.exception_type)
           p.task_name, p.exception_type, p.example_message, p.example_job_id
      FROM parts p
      JOIN top t ON t.task_name = p.task_name AND t.exception_type = p.exception_type
                AND t.last_seen = p.last_seen
     ORDER BY p.task_name, p.exception_type, p.example_job_id DESC NULLS LAST
)
SELECT t.task_name, t.exception_type, t.failures, t.share, t.first_seen, t.last_seen,
       e.example_message, e.example_job_id
  FROM top t LEFT JOIN examples e USING (task_name, exception_type)
 ORDER BY t.failures DESC, t.last_seen DESC, t.task_name, t.exception_type
"""
# source -> (fine table, coarse table, coarse unit)
ERROR_GROUP_LEVELS = {
    "minute": ("jobdash_error_groups_minute", "jobdash_error_groups_hour", timedelta(hours=1)),
    "hour": ("jobdash_error_groups_hour", "jobdash_error_groups_day", timedelta(days=1)),
}
ERROR_GROUPS_SQL = {
    source: _ERROR_GROUPS_SELECT.format(
        head=_ERROR_PART.format(table=fine, lower="start", upper="coarse_start"),
        middle=_ERROR_PART.format(table=coarse, lower="coarse_start", upper="coarse_end"),
        tail=_ERROR_PART.format(table=fine, lower="coarse_end", upper="end"),
    )
    for source, (fine, coarse, _unit) in ERROR_GROUP_LEVELS.items()
}


def error_group_split(start: datetime, end: datetime, unit: timedelta) -> tuple[datetime, datetime]:
    """[coarse_start, coarse_end): the whole `unit` buckets (UTC-aligned) inside [start, end).

    Without any, both are `end`, so the fine rows cover the whole range.
    """
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    coarse_start = epoch + -((epoch - start) // unit) * unit  # ceil to the unit
    coarse_end = epoch + ((end - epoch) // unit) * unit  # floor to the unit
    if coarse_start >= coarse_end:
        return end, end
    return coarse_start, coarse_end


# last_run_at: the end of the window the last rollup made complete (core/history_tables.py).
RECORDING_SQL = "SELECT now(), last_run_at FROM jobdash_rollup_state"
# `jobdash demo` made up history before seeded_until (jobs/demo/history.py creates the table).
DEMO_HISTORY_SQL = """
SELECT CASE WHEN to_regclass('jobdash_demo_history') IS NOT NULL THEN 1 END
"""
DEMO_UNTIL_SQL = "SELECT seeded_until FROM jobdash_demo_history"
FILTER_OPTIONS_SQL = """
SELECT DISTINCT queue_name, task_name FROM jobdash_history_hour
 WHERE bucket >= now() - interval '90 days' ORDER BY 1, 2
"""


@dataclass(frozen=True)
class RecordingStatus:
    now: datetime
    complete_to: datetime | None  # history holds every event before this instant

    @property
    def recording(self) -> bool:
        return self.complete_to is not None and self.now - self.complete_to <= RECORDING_STALE_AFTER


@dataclass(frozen=True)
class HistoryData:
    range_name: str
    bucket: timedelta
    start: datetime
    end: datetime
    source: str  # a THROUGHPUT_SQL source: "minute", "queue_hour", "raw", …
    status: RecordingStatus
    throughput: pd.DataFrame
    queue_depth: pd.DataFrame
    error_groups: pd.DataFrame
    demo_until: datetime | None = None  # history before this includes made-up demo rows

    @property
    def level(self) -> str:
        """ "minute", "hour" or "raw": the resolution the charts were read at (for captions)."""
        return self.source.removeprefix("queue_")


class _Recording(NamedTuple):
    now: datetime
    last_run_at: datetime | None


class _Present(NamedTuple):
    present: int | None


class _DemoUntil(NamedTuple):
    seeded_until: datetime


class _QueueTask(NamedTuple):
    queue_name: str
    task_name: str


class _FloorId(NamedTuple):
    last_event_id: int


class ThroughputRow(NamedTuple):
    """A row of THROUGHPUT_SQL."""

    bucket_start: datetime
    queue: str | None  # None: all queues summed
    started: int
    succeeded: int
    failed: int
    retried: int
    cancelled: int
    aborted: int
    duration_count: int
    duration_sum_ms: float  # a sum over at least one row
    max_ms: float | None
    histogram: list[int]


class HistoryParams(TypedDict):
    """The parameters shared by the chart queries of one range (query_params)."""

    step: timedelta
    start: datetime
    end: datetime
    queue: str | None
    task: str | None
    floor_id: int
    ceiling_id: int
    limit: int


def load_recording_status(conn: psycopg.Connection) -> RecordingStatus:
    now, complete_to = fetch_one(conn, _Recording, RECORDING_SQL)
    return RecordingStatus(now=now, complete_to=complete_to)


def load_demo_until(conn: psycopg.Connection) -> datetime | None:
    """Where the made-up history of `jobdash demo` ends, if this database has any."""
    row = fetch_optional(conn, _Present, DEMO_HISTORY_SQL)
    if not row or row.present is None:
        return None
    marker = fetch_optional(conn, _DemoUntil, DEMO_UNTIL_SQL)
    return marker.seeded_until if marker else None


def load_filter_options(conn: psycopg.Connection) -> tuple[list[str], list[str]]:
    """Queues and tasks with history in the last 90 days (for the filter menus)."""
    rows = fetch_all(conn, _QueueTask, FILTER_OPTIONS_SQL)
    return sorted({r.queue_name for r in rows}), sorted({r.task_name for r in rows})


def throughput_frame(rows: Sequence[ThroughputRow]) -> pd.DataFrame:
    """Rows of THROUGHPUT_SQL → one row per bucket with rates and percentiles (pure)."""
    records = []
    for (
        bucket_start, queue, started, succeeded, failed, retried, cancelled, aborted,
        duration_count, duration_sum_ms, max_ms, hist,
    ) in rows:  # fmt: skip
        finished = succeeded + failed
        records.append(
            {
                "bucket_start": bucket_start,
                "queue": queue,
                "started": started,
                "succeeded": succeeded,
                "failed": failed,
                "retried": retried,
                "cancelled": cancelled,
                "aborted": aborted,
                "failure_rate": failed / finished if finished else None,
                "duration_count": duration_count,
                "avg_ms": duration_sum_ms / duration_count if duration_count else None,
                "p50_ms": percentile_from_histogram(hist, 0.50, max_ms),
                "p95_ms": percentile_from_histogram(hist, 0.95, max_ms),
                "p99_ms": percentile_from_histogram(hist, 0.99, max_ms),
                "max_ms": max_ms,
            }
        )
    return pd.DataFrame.from_records(records, columns=THROUGHPUT_COLUMNS)


def query_params(
    history_range: HistoryRange,
    start: datetime,
    end: datetime,
    *,
    queue: str | None = None,
    task: str | None = None,
) -> HistoryParams:
    """The parameters shared by the chart queries of one range."""
    return {
        "step": history_range.bucket,
        "start": start,
        "end": end,
        "queue": queue,
        "task": task,
        "floor_id": 0,  # the raw source reads every event of the range, or from raw_floor_id
        "ceiling_id": NO_CEILING_ID,
        "limit": ERROR_GROUPS_LIMIT,
    }


def raw_floor_id(conn: psycopg.Connection, start: datetime) -> int:
    """The rollup marks' id floor for raw events from `start` on: a rollup that ran once lets
    the raw fallback read the last hour's events by primary key instead of all of them."""
    row = fetch_optional(conn, _FloorId, FLOOR_ID_SQL, {"start": start})
    return int(row.last_event_id) if row else 0


def load_throughput(
    conn: psycopg.Connection, source: str, params: HistoryParams, *, per_queue: bool = False
) -> pd.DataFrame:
    """Outcomes and durations per bucket from a THROUGHPUT_SQL source (see throughput_source)."""
    query = THROUGHPUT_SQL[source, per_queue]
    return throughput_frame(fetch_all(conn, ThroughputRow, query, params))


def load_queue_depth(conn: psycopg.Connection, source: str, params: HistoryParams) -> pd.DataFrame:
    return pd.DataFrame(conn.execute(DEPTH_SQL[source], params).fetchall(), columns=DEPTH_COLUMNS)


def load_error_groups(conn: psycopg.Connection, source: str, params: HistoryParams) -> pd.DataFrame:
    """Top failing (task, exception type) over [start, end): see ERROR_GROUP_LEVELS."""
    coarse_start, coarse_end = error_group_split(
        params["start"], params["end"], ERROR_GROUP_LEVELS[source][2]
    )
    rows = conn.execute(
        ERROR_GROUPS_SQL[source],
        {**params, "coarse_start": coarse_start, "coarse_end": coarse_end},
    ).fetchall()
    return pd.DataFrame(rows, columns=ERROR_GROUP_COLUMNS)


def load_history(
    conn: psycopg.Connection,
    range_name: str,
    *,
    queue: str | None = None,
    task: str | None = None,
    minute_retention_days: float = 14,
    per_queue: bool = False,
) -> HistoryData:
    history_range = RANGES[range_name]
    # One snapshot for all charts. JIT off: the raw-events fallback is estimated above
    # jit_above_cost, and compiling costs more than any of these queries takes to run (see
    # docs/benchmarks-history.md).
    with conn.transaction():
        conn.execute("SET LOCAL jit = off")
        conn.execute("SET LOCAL timezone = 'UTC'")
        status = load_recording_status(conn)
        end = status.now
        start = end - history_range.span
        source = resolution(history_range, minute_retention_days)
        params = query_params(history_range, start, end, queue=queue, task=task)
        chart_source = throughput_source(source, task, status.recording, range_name)
        if chart_source == "raw":
            params["floor_id"] = raw_floor_id(conn, start)
        throughput = load_throughput(conn, chart_source, params, per_queue=per_queue)
        depth = load_queue_depth(conn, source, params)
        errors = load_error_groups(conn, source, params)
        demo_until = load_demo_until(conn)

    return HistoryData(
        range_name=range_name,
        bucket=history_range.bucket,
        start=start,
        end=end,
        source=chart_source,
        status=status,
        throughput=throughput,
        queue_depth=depth,
        error_groups=errors,
        demo_until=demo_until if demo_until is not None and demo_until > start else None,
    )


def history_rows(data: HistoryData) -> list[dict[str, object]]:
    """One row per (bucket, queue) for `jobdash history`: outcomes, durations, depth, latency.

    `data` must have been loaded with per_queue=True.
    """
    merged = data.throughput.merge(
        data.queue_depth, on=["bucket_start", "queue"], how="outer"
    ).sort_values(["bucket_start", "queue"], kind="stable")
    columns = [
        "bucket_start", "queue", "succeeded", "failed", "retried", "p50_ms", "p95_ms",
        "ready", "scheduled", "doing", "latency_s",
    ]  # fmt: skip
    records = merged[columns].astype(object).where(merged[columns].notna(), None)
    return cast("list[dict[str, object]]", records.to_dict("records"))  # the columns: text
