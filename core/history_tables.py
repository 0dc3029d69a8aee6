"""The history tables as their writer (the rollup) and their readers (charts, CLI) share them.

Bucket columns, the duration histogram (bounds, columns, percentile math) and the event-bucket
SQL that turns raw `procrastinate_events` into one row per (minute, queue, task): the rollup
stores its rows, the History page computes them live for the last hour when no rollup runs.

`jobdash_rollup_state.last_run_at` is the end of the window the last run made complete: every
bucket before it holds the events committed when that run read them (open transactions' late
events are recomputed by the next run, see jobs/maintenance/rollup.py).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

# Upper bounds (ms) of the duration histogram bins, a 1-2-5 log scale; bin 0 is "< 1 ms",
# the last bin is ">= 5,000,000 ms" (83 min). Changing them invalidates stored histograms.
HISTOGRAM_BOUNDS_MS: tuple[float, ...] = tuple(
    float(m * 10**e) for e in range(7) for m in (1, 2, 5)
)
HISTOGRAM_BINS = len(HISTOGRAM_BOUNDS_MS) + 1
# One integer column per bin (migration 004 explains why not an array).
HISTOGRAM_COLUMNS: tuple[str, ...] = tuple(f"duration_bin_{i:02d}" for i in range(HISTOGRAM_BINS))

# The Procrastinate event types we count, and the column each goes to.
EVENT_COLUMNS = {
    "started": "started",
    "succeeded": "succeeded",
    "failed": "failed",
    "deferred_for_retry": "retried",
    "cancelled": "cancelled",
    "aborted": "aborted",
}
# Events that end an attempt that ran: their duration is measured from the latest `started`.
ATTEMPT_END_EVENTS = ("succeeded", "failed", "deferred_for_retry", "aborted")

_METRIC_COLUMNS = (
    "started, succeeded, failed, retried, cancelled, aborted, "
    "duration_count, duration_sum_ms, duration_max_ms, " + ", ".join(HISTOGRAM_COLUMNS)
)
HISTORY_COLUMNS = "bucket, queue_name, task_name, " + _METRIC_COLUMNS
QUEUE_HISTORY_COLUMNS = "bucket, queue_name, " + _METRIC_COLUMNS
METRIC_SUMS = (
    "sum(started), sum(succeeded), sum(failed), sum(retried), sum(cancelled), sum(aborted), "
    "sum(duration_count), sum(duration_sum_ms), max(duration_max_ms), "
    + ", ".join(f"sum({c})" for c in HISTOGRAM_COLUMNS)
)
# No upper id bound (the `ceiling_id` of EVENT_BUCKETS_SQL outside a backfill chunk).
NO_CEILING_ID = 2**63 - 1


def histogram_array_sql() -> str:
    """`ARRAY[sum(duration_bin_00), …]::bigint[]`: the summed histogram of a group of rows."""
    return "ARRAY[" + ", ".join(f"sum({c})" for c in HISTOGRAM_COLUMNS) + "]::bigint[]"


_BOUNDS_LITERAL = "ARRAY[" + ", ".join(repr(b) for b in HISTOGRAM_BOUNDS_MS) + "]::float8[]"
_COUNT_COLUMNS = ",\n       ".join(
    f"count(*) FILTER (WHERE type = '{event}') AS {column}"
    for event, column in EVENT_COLUMNS.items()
)
_HISTOGRAM_COUNTS = ",\n       ".join(
    f"count(*) FILTER (WHERE bin = {i}) AS {c}" for i, c in enumerate(HISTOGRAM_COLUMNS)
)
_EVENT_TYPES = ", ".join(f"'{t}'" for t in EVENT_COLUMNS)
_END_TYPES = ", ".join(f"'{t}'" for t in ATTEMPT_END_EVENTS)

# Per-minute aggregates of the events in [start, end) with floor_id < id <= ceiling_id (the
# marks give the floor, a backfill chunk both). Events of deleted jobs come from
# jobdash_deleted_job_events (kept by a trigger).
#
# An attempt's duration runs from the job's latest `started` at or before its end event. Any
# `started` inside the window is in `ev` and later than every `started` before the window, so
# a running max over `ev` finds it; only ends whose start is before the window probe the
# indexes. Each step is MATERIALIZED: inlined, the duration expression (and its probe) was
# evaluated once per aggregate that reads it, 25 times per event.
EVENT_BUCKETS_SQL = f"""
WITH ev AS MATERIALIZED (
    SELECT e.id, e.job_id, e.type::text AS type, e.at, j.queue_name, j.task_name
      FROM procrastinate_events e
      JOIN procrastinate_jobs j ON j.id = e.job_id
     WHERE e.id > %(floor_id)s AND e.id <= %(ceiling_id)s
       AND e.at >= %(start)s AND e.at < %(end)s
       AND e.type IN ({_EVENT_TYPES})
    UNION ALL
    SELECT d.event_id, d.job_id, d.type, d.at, d.queue_name, d.task_name
      FROM jobdash_deleted_job_events d
     WHERE d.at >= %(start)s AND d.at < %(end)s AND d.type IN ({_EVENT_TYPES})
       AND NOT EXISTS (SELECT 1 FROM procrastinate_events r WHERE r.id = d.event_id)
), paired AS MATERIALIZED (
    SELECT ev.*, max(at) FILTER (WHERE type = 'started')
                     OVER (PARTITION BY job_id ORDER BY at) AS started_in_window
      FROM ev
), measured AS MATERIALIZED (
    SELECT date_trunc('minute', at) AS bucket, queue_name, task_name, type,
           CASE WHEN type IN ({_END_TYPES}) THEN
               extract(epoch FROM at - coalesce(started_in_window, (
                   SELECT max(s.at) FROM (
                       SELECT at FROM procrastinate_events
                        WHERE job_id = paired.job_id AND type = 'started' AND at <= paired.at
                       UNION ALL
                       SELECT at FROM jobdash_deleted_job_events
                        WHERE job_id = paired.job_id AND type = 'started' AND at <= paired.at
                   ) s
               ))) * 1000
           END AS duration_ms
      FROM paired
), binned AS MATERIALIZED (
    SELECT measured.*, width_bucket(duration_ms, {_BOUNDS_LITERAL}) AS bin FROM measured
)
SELECT bucket, queue_name, task_name,
       {_COUNT_COLUMNS},
       count(duration_ms)::int AS duration_count,
       coalesce(sum(duration_ms), 0) AS duration_sum_ms,
       max(duration_ms) AS duration_max_ms,
       {_HISTOGRAM_COUNTS}
  FROM binned
 GROUP BY 1, 2, 3
"""

# The highest event id known to be below every event whose `at` is >= start (0: none known).
# A mark (taken_at, last_event_id) was written after reading the id sequence: any event whose
# `at` (its transaction's start) is >= taken_at got its id later (see jobdash_rollup_marks).
FLOOR_ID_SQL = """
SELECT coalesce(max(last_event_id), 0) FROM jobdash_rollup_marks WHERE taken_at <= %(start)s
"""


def percentile_from_histogram(
    counts: Sequence[int], q: float, max_ms: float | None = None
) -> float | None:
    """The q-quantile (0..1) of durations summarised by `counts` (HISTOGRAM_BOUNDS_MS bins).

    Interpolates geometrically inside the bin (log-scale bins); never exceeds max_ms.
    """
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        if cumulative + count >= rank:
            fraction = (rank - cumulative) / count
            value = _interpolate(index, fraction, max_ms)
            return min(value, max_ms) if max_ms is not None else value
        cumulative += count
    return max_ms


def _interpolate(index: int, fraction: float, max_ms: float | None) -> float:
    bounds = HISTOGRAM_BOUNDS_MS
    if index == 0:
        return bounds[0] * fraction
    low = bounds[index - 1]
    high = bounds[index] if index < len(bounds) else max(max_ms or low * 2, low)
    if high <= low:
        return low
    return low * math.exp(math.log(high / low) * fraction)


def histogram_bin(duration_ms: float) -> int:
    """The bin a duration falls in, as SQL's width_bucket over HISTOGRAM_BOUNDS_MS counts it."""
    return bisect.bisect_right(HISTOGRAM_BOUNDS_MS, duration_ms)
