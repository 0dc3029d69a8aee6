"""Whether the workers' instrumentation is still writing: the dashboard's only way to learn that
Jobdash's tables refuse writes (a full disk, a revoked grant, a trigger) on the worker side.

The instrumentation never fails a job over its own writes: it logs a throttled warning in the
worker's log, which the dashboard cannot read. What the dashboard can see is the effect:
- a live worker (Procrastinate's heartbeat is fresh) whose Jobdash row has not been written
  for well over a heartbeat: its CPU, memory and queues on the page are old;
- failed attempts (Procrastinate's events) with no error row: their tracebacks are missing.
Both read only recent rows, through indexes (jobdash_workers is small; the recent events
from the first one of the window, found by bisection of their ids: jobdash_event_id_before).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import psycopg

from jobdash.app.rules.text import counted, format_duration
from jobdash.core.rows import fetch_one

# A Jobdash row this much older than the same worker's Procrastinate heartbeat is not written.
METRICS_LAG_S = 30.0
# A worker whose Procrastinate heartbeat is younger than this is alive.
LIVE_HEARTBEAT_S = 120.0
# How far back failed attempts are compared with the error rows.
FAILURE_WINDOW_S = 600

STALE_WORKER_ROWS = """
SELECT count(*), max(extract(epoch FROM pw.last_heartbeat - jw.updated_at))::float8
FROM procrastinate_workers pw
JOIN jobdash_workers jw ON jw.worker_id = pw.id
WHERE jw.stopped_at IS NULL
  AND pw.last_heartbeat > now() - make_interval(secs => %(live_s)s)
  AND jw.updated_at < pw.last_heartbeat - make_interval(secs => %(lag_s)s)
"""

# Failed attempts (doing -> failed, doing -> todo for a retry) without an error row recorded
# around them, while an instrumented worker is running (its middleware writes the row before
# Procrastinate saves the outcome).
UNRECORDED_FAILURES = """
SELECT count(*), min(e.at)
FROM procrastinate_events e
WHERE e.id > jobdash_event_id_before(now() - make_interval(secs => %(window_s)s + 300))
  AND e.type IN ('failed', 'deferred_for_retry')
  AND e.at > now() - make_interval(secs => %(window_s)s)
  AND NOT EXISTS (
      SELECT FROM jobdash_job_errors r
      WHERE r.job_id = e.job_id AND r.recorded_at > e.at - interval '15 minutes'
  )
  AND EXISTS (SELECT FROM jobdash_workers w WHERE w.stopped_at IS NULL)
"""


class _StaleRow(NamedTuple):
    workers: int
    lag_s: float | None


class _UnrecordedRow(NamedTuple):
    failures: int
    since: datetime | None


@dataclass(frozen=True)
class InstrumentationHealth:
    stale_workers: int = 0
    metrics_lag_s: float | None = None
    unrecorded_failures: int = 0
    unrecorded_since: datetime | None = None

    def workers_notice(self) -> str | None:
        if not self.stale_workers:
            return None
        workers = counted(self.stale_workers, "live worker")
        return (
            f"Jobdash's metrics of {workers} are {format_duration(self.metrics_lag_s)} old: "
            "the instrumentation cannot write jobdash_workers (disk full? permissions?) — "
            "see the worker's log."
        )

    def errors_notice(self) -> str | None:
        if not self.unrecorded_failures:
            return None
        attempts = counted(self.unrecorded_failures, "failed attempt")
        return (
            f"{attempts} of the last {FAILURE_WINDOW_S // 60} min have no recorded error: the "
            "instrumentation may be unable to write jobdash_job_errors (disk full? "
            "permissions?) — see the worker's log."
        )


def load_instrumentation_health(
    conn: psycopg.Connection, live_s: float = LIVE_HEARTBEAT_S
) -> InstrumentationHealth:
    params = {"live_s": live_s, "lag_s": METRICS_LAG_S}
    stale, lag = fetch_one(conn, _StaleRow, STALE_WORKER_ROWS, params)
    unrecorded, since = fetch_one(
        conn, _UnrecordedRow, UNRECORDED_FAILURES, {"window_s": FAILURE_WINDOW_S}
    )
    return InstrumentationHealth(int(stale), lag, int(unrecorded), since)
