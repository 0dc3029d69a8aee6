"""Dashboard loaders: one per panel, SQL (app/dashboard_sql.py) → records (app/models.py).

Each loader takes a psycopg 3 connection and does its work in one or two round trips. Rules
(health, relative time, due-ness, previews) come from app/schedules.py. "Now" is the database's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

import psycopg

from jobdash.app.read import dashboard_sql as sql
from jobdash.app.read.args import preview_args
from jobdash.app.read.failed_jobs import FailedJobFilter, list_failed_jobs
from jobdash.app.read.models import (
    FailedJobRow,
    FailedJobs,
    QueueRow,
    QueueStats,
    Snapshot,
    StalledJob,
    WorkerHealth,
    WorkerRow,
)
from jobdash.app.read.schedule import load_scheduler
from jobdash.app.rules.health import is_worker_healthy
from jobdash.app.rules.text import PAYLOAD_PREVIEW_CHARS
from jobdash.core.history_tables import NO_CEILING_ID
from jobdash.core.jsontypes import Json
from jobdash.core.periodic import PeriodicDefinition
from jobdash.core.rows import fetch_all, fetch_one, typed_cursor, utc

logger = logging.getLogger(__name__)

STALLED_LIST_LIMIT = 100
# Open jobs are read among the oldest COUNT_CAP of them; past it counts are lower bounds and
# the panel shows the rollup's latest minute sample as an estimate (≈) when it has one.
COUNT_CAP = sql.OPEN_JOBS_CAP
# A depth sample older than this is no estimate of now.
SAMPLE_MAX_AGE_S = 180
# Args bigger than this (bytes on disk) are previewed from their first characters only.
MAX_ARGS_BYTES = 16_384
MAX_ERROR_CHARS = 2_000

__all__ = [
    "load_failed_jobs",
    "load_queue_stats",
    "load_scheduler",
    "load_snapshot",
    "load_worker_health",
]


class _QueueCounts(NamedTuple):
    name: str
    ready: int
    scheduled: int
    doing: int
    failed: int
    oldest_ready_age_s: float | None
    capped: bool


class _DepthSample(NamedTuple):
    queue_name: str
    bucket: datetime
    ready_max: int
    scheduled_max: int
    doing_max: int
    capped: bool


class _WindowBounds(NamedTuple):
    now: datetime
    start: datetime
    complete_to: datetime | None
    mark_floor: int
    bisected_floor: int


class _Outcomes(NamedTuple):
    succeeded: int
    failed: int
    duration_sum_ms: float
    duration_count: int


class _WorkerFacts(NamedTuple):
    worker_id: int
    hostname: str | None
    pid: int | None
    concurrency: int | None
    cpu_percent: float | None
    memory_mb: float | None
    last_heartbeat: datetime
    heartbeat_age_s: float
    jobs: int
    worker_name: str | None
    queues: list[str] | None


class _Orphaned(NamedTuple):
    orphaned: int
    capped: bool
    ids: list[int]
    queues: list[str]
    tasks: list[str]


_NO_OUTCOMES = _Outcomes(0, 0, 0.0, 0)


def load_queue_stats(conn: psycopg.Connection, *, window_seconds: int = 3600) -> QueueStats:
    """Per queue: ready, scheduled, in progress (among the oldest COUNT_CAP open jobs, with the
    rollup's latest sample as an estimate past it), failed (exact), latency; and the last
    `window_seconds` of outcomes. Two round trips."""
    params = {"cap": COUNT_CAP, "max_age_s": SAMPLE_MAX_AGE_S, "window_seconds": window_seconds}
    with conn.pipeline():
        bounds_cur = typed_cursor(conn, _WindowBounds).execute(sql.WINDOW_BOUNDS, params)
        queues_cur = typed_cursor(conn, _QueueCounts).execute(sql.QUEUES, params)
        samples_cur = typed_cursor(conn, _DepthSample).execute(sql.DEPTH_SAMPLES, params)
    bounds = bounds_cur.fetchone()
    assert bounds is not None
    samples = {sample.queue_name: sample for sample in samples_cur.fetchall()}
    queues = [_queue_row(counts, samples.get(counts.name)) for counts in queues_cur.fetchall()]
    window = _window_stats(conn, bounds)
    total = window.succeeded + window.failed
    return QueueStats(
        current_queue_size=sum(q.ready for q in queues),
        window_seconds=window_seconds,
        successful_jobs=window.succeeded,
        failed_jobs=window.failed,
        total_jobs=total,
        success_rate=(window.succeeded / total * 100) if total else None,
        avg_execution_time_ms=window.avg_ms if total else None,
        queues=queues,
        count_cap=COUNT_CAP,
        window_source=window.source,
    )


def _queue_row(counts: _QueueCounts, sample: _DepthSample | None) -> QueueRow:
    # An estimate only where the live read stopped at its cap and the sample did not.
    estimate = sample if counts.capped and sample is not None and not sample.capped else None
    age = counts.oldest_ready_age_s
    return QueueRow(
        name=counts.name,
        ready=counts.ready,
        scheduled=counts.scheduled,
        doing=counts.doing,
        failed=counts.failed,
        oldest_ready_age_s=max(0.0, age) if age is not None else None,
        capped=counts.capped,
        ready_estimate=max(estimate.ready_max, counts.ready) if estimate else None,
        scheduled_estimate=max(estimate.scheduled_max, counts.scheduled) if estimate else None,
        doing_estimate=max(estimate.doing_max, counts.doing) if estimate else None,
        estimated_at=utc(estimate.bucket) if estimate else None,
    )


@dataclass(frozen=True)
class WindowStats:
    succeeded: int
    failed: int
    avg_ms: float | None
    source: str  # "history" (rollup minutes + the raw tail since) or "raw events"


def load_window_stats(conn: psycopg.Connection, window_seconds: int) -> WindowStats:
    """Outcomes of the last `window_seconds` (see _window_stats)."""
    bounds = fetch_one(conn, _WindowBounds, sql.WINDOW_BOUNDS, {"window_seconds": window_seconds})
    return _window_stats(conn, bounds)


def _window_stats(conn: psycopg.Connection, bounds: _WindowBounds) -> WindowStats:
    """The minutes the rollup made complete, from its per-queue history (a few rows per minute),
    then the events since, read by primary key from a rollup mark; without a rollup the whole
    window from raw events (slower, bounded by the window: a bisection of the event ids finds
    where it starts). One round trip."""
    from_history = bounds.complete_to is not None and bounds.complete_to > bounds.start
    tail_start, floor = bounds.start, bounds.bisected_floor
    with conn.pipeline():
        history_cur = None
        if from_history:
            assert bounds.complete_to is not None
            minutes: dict[str, object] = {
                "start": _minute_after(bounds.start),
                "end": bounds.complete_to,
            }
            history_cur = typed_cursor(conn, _Outcomes).execute(sql.WINDOW_FROM_HISTORY, minutes)
            tail_start, floor = bounds.complete_to, max(bounds.mark_floor, 0)
        tail: dict[str, object] = {
            "start": tail_start,
            "end": bounds.now,
            "floor_id": floor,
            "ceiling_id": NO_CEILING_ID,
        }
        tail_cur = typed_cursor(conn, _Outcomes).execute(sql.WINDOW_FROM_EVENTS, tail)
    history = (history_cur.fetchone() if history_cur else None) or _NO_OUTCOMES
    recent = tail_cur.fetchone() or _NO_OUTCOMES
    count = history.duration_count + recent.duration_count
    return WindowStats(
        succeeded=history.succeeded + recent.succeeded,
        failed=history.failed + recent.failed,
        avg_ms=(history.duration_sum_ms + recent.duration_sum_ms) / count if count else None,
        source="history" if from_history else "raw events",
    )


def _minute_after(value: datetime) -> datetime:
    """The first whole minute at or after `value` (history buckets are minutes)."""
    floor = value.replace(second=0, microsecond=0)
    return floor if floor == value else floor + timedelta(minutes=1)


def load_worker_health(
    conn: psycopg.Connection, *, healthy_heartbeat_s: float = 120
) -> WorkerHealth:
    """Every worker with its jobs in progress, and the stalled jobs: those of unhealthy workers
    and those whose worker row is gone (among the oldest COUNT_CAP open jobs). Two round
    trips: which workers are unhealthy is a rule of app/rules/health.py."""
    params = {"cap": COUNT_CAP, "limit": STALLED_LIST_LIMIT}
    with conn.pipeline():
        workers_cur = typed_cursor(conn, _WorkerFacts).execute(sql.WORKERS, params)
        orphaned_cur = typed_cursor(conn, _Orphaned).execute(sql.ORPHANED, params)
    workers = [_worker_row(facts, healthy_heartbeat_s) for facts in workers_cur.fetchall()]
    orphaned = orphaned_cur.fetchone() or _Orphaned(0, False, [], [], [])
    unhealthy = [w for w in workers if not w.healthy]
    stalled = [
        StalledJob(id=job_id, queue=queue, task=task, worker_id=None)
        for job_id, queue, task in zip(orphaned.ids, orphaned.queues, orphaned.tasks, strict=True)
    ]
    if unhealthy:
        stalled += fetch_all(
            conn,
            StalledJob,
            sql.STALLED_ON_WORKERS,
            {**params, "unhealthy_ids": [w.worker_id for w in unhealthy]},
        )
    return WorkerHealth(
        total_workers=len(workers),
        active_workers=len(workers) - len(unhealthy),
        jobs_in_progress=sum(w.jobs for w in workers) + orphaned.orphaned,
        stalled_jobs=sum(w.jobs for w in unhealthy) + orphaned.orphaned,
        workers=workers,
        stalled=sorted(stalled, key=_job_id)[:STALLED_LIST_LIMIT],
    )


def _job_id(job: StalledJob) -> int:
    return job.id


def _worker_row(facts: _WorkerFacts, healthy_heartbeat_s: float) -> WorkerRow:
    return WorkerRow(
        worker_id=facts.worker_id,
        hostname=facts.hostname,
        pid=facts.pid,
        healthy=is_worker_healthy(facts.heartbeat_age_s, facts.cpu_percent, healthy_heartbeat_s),
        jobs=facts.jobs,
        max_jobs=facts.concurrency,
        cpu_percent=facts.cpu_percent,
        memory_mb=facts.memory_mb,
        last_heartbeat=utc(facts.last_heartbeat),
        heartbeat_age_s=facts.heartbeat_age_s,
        worker_name=facts.worker_name,
        queues=list(facts.queues) if facts.queues is not None else None,
    )


def load_failed_jobs(conn: psycopg.Connection, *, limit: int = 50) -> FailedJobs:
    """The exact number of failed jobs (the ledger) and the newest failures, read from our
    list of failed jobs as the failed-jobs page does."""
    page = list_failed_jobs(conn, FailedJobFilter(), limit=limit)
    ids = [row["id"] for row in page.rows]
    args_params = {
        "ids": ids,
        "max_args_bytes": MAX_ARGS_BYTES,
        "preview_chars": PAYLOAD_PREVIEW_CHARS * 2,
    }
    with conn.pipeline():
        total_cur = typed_cursor(conn, _Count).execute(sql.FAILED_TOTAL)
        args_cur = typed_cursor(conn, _Args).execute(sql.FAILED_ARGS, args_params)
        errors_params: dict[str, object] = {"ids": ids, "max_chars": MAX_ERROR_CHARS}
        errors_cur = typed_cursor(conn, _LatestError).execute(sql.LATEST_ERRORS, errors_params)
    total = total_cur.fetchone()
    args = {found.job_id: found for found in args_cur.fetchall()}
    errors = {found.job_id: found.text for found in errors_cur.fetchall()}
    jobs = [
        FailedJobRow(
            id=row["id"],
            queue=row["queue_name"],
            task=row["task_name"],
            error=errors.get(row["id"]),
            payload_preview=_preview(args.get(row["id"])),
            failed_at=row["failed_at"],
            attempts=row["attempts"],
        )
        for row in page.rows
    ]
    return FailedJobs(total_failed_jobs=total.value if total else 0, jobs=jobs)


class _Count(NamedTuple):
    value: int


class _Now(NamedTuple):
    value: datetime


class _Args(NamedTuple):
    job_id: int
    value: Json  # None when too big to ship whole
    text: str | None  # then its first characters


class _LatestError(NamedTuple):
    job_id: int
    text: str


def _preview(args: _Args | None) -> str:
    return preview_args(args.value, args.text) if args else preview_args(None, None)


def load_snapshot(
    conn: psycopg.Connection,
    *,
    window_seconds: int = 3600,
    healthy_heartbeat_s: float = 120,
    failed_limit: int = 50,
    extra_periodic: list[PeriodicDefinition] | None = None,
    upcoming_limit: int = 10,
) -> Snapshot:
    now = fetch_one(conn, _Now, sql.NOW)
    return Snapshot(
        generated_at=utc(now.value),
        queue_stats=load_queue_stats(conn, window_seconds=window_seconds),
        worker_health=load_worker_health(conn, healthy_heartbeat_s=healthy_heartbeat_s),
        failed_jobs=load_failed_jobs(conn, limit=failed_limit),
        scheduler=load_scheduler(conn, extra_periodic=extra_periodic, limit=upcoming_limit),
    )
