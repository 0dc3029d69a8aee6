"""Dashboard loaders: one per panel, SQL (app/dashboard_sql.py) → records (app/models.py).

Each loader takes a psycopg 3 connection and does its work in one or two round trips. Rules
(health, relative time, due-ness, previews) come from app/schedules.py. "Now" is the database's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
from jobdash.core.history_tables import EVENT_BUCKETS_SQL, NO_CEILING_ID
from jobdash.core.periodic import PeriodicDefinition

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


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def load_queue_stats(conn: psycopg.Connection, *, window_seconds: int = 3600) -> QueueStats:
    """Per queue: ready, scheduled, in progress (among the oldest COUNT_CAP open jobs, with the
    rollup's latest sample as an estimate past it), failed (exact), latency; and the last
    `window_seconds` of outcomes."""
    window = load_window_stats(conn, window_seconds)
    params = {"cap": COUNT_CAP, "max_age_s": SAMPLE_MAX_AGE_S}
    with conn.pipeline():
        queues_cur = conn.execute(sql.QUEUES, params)
        samples_cur = conn.execute(sql.DEPTH_SAMPLES, params)
    samples = {row[0]: row[1:] for row in samples_cur.fetchall()}
    queues = [
        _queue_row(name, int(ready), int(scheduled), int(doing), int(failed), age,
                   bool(capped), samples.get(name))
        for name, ready, scheduled, doing, failed, age, capped in queues_cur.fetchall()
    ]  # fmt: skip
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


def _queue_row(
    name: str,
    ready: int,
    scheduled: int,
    doing: int,
    failed: int,
    oldest_age: float | None,
    capped: bool,
    sample: tuple[datetime, int, int, int, bool] | None,
) -> QueueRow:
    # An estimate only where the live read stopped at its cap and the sample did not.
    estimate = sample if capped and sample is not None and not sample[4] else None
    return QueueRow(
        name=name,
        ready=ready,
        scheduled=scheduled,
        doing=doing,
        failed=failed,
        oldest_ready_age_s=max(0.0, float(oldest_age)) if oldest_age is not None else None,
        capped=capped,
        ready_estimate=max(int(estimate[1]), ready) if estimate else None,
        scheduled_estimate=max(int(estimate[2]), scheduled) if estimate else None,
        doing_estimate=max(int(estimate[3]), doing) if estimate else None,
        estimated_at=_utc(estimate[0]) if estimate else None,
    )


@dataclass(frozen=True)
class WindowStats:
    succeeded: int
    failed: int
    avg_ms: float | None
    source: str  # "history" (rollup minutes + the raw tail since) or "raw events"


def load_window_stats(conn: psycopg.Connection, window_seconds: int) -> WindowStats:
    """Outcomes of the last `window_seconds`: the minutes the rollup made complete, from its
    per-queue history (a few rows per minute), then the events since, read by primary key from
    a rollup mark; without a rollup the whole window from raw events (slower, bounded by the
    window: a bisection of the event ids finds where it starts)."""
    row = conn.execute(sql.WINDOW_BOUNDS, {"window_seconds": window_seconds}).fetchone()
    assert row is not None
    now, start, complete_to, mark_floor, bisected_floor = row
    totals = [0, 0, 0.0, 0]
    source = "raw events"
    tail_start, floor = start, bisected_floor
    if complete_to is not None and complete_to > start:
        history = conn.execute(
            sql.WINDOW_FROM_HISTORY, {"start": _minute_after(start), "end": complete_to}
        ).fetchone()
        assert history is not None
        totals = [a + b for a, b in zip(totals, history, strict=True)]
        source = "history"
        tail_start, floor = complete_to, max(mark_floor, 0)
    tail = conn.execute(
        f"SELECT coalesce(sum(succeeded), 0)::bigint, coalesce(sum(failed), 0)::bigint, "
        f"coalesce(sum(duration_sum_ms), 0)::float8, coalesce(sum(duration_count), 0)::bigint "
        f"FROM ({EVENT_BUCKETS_SQL}) tail",
        {"start": tail_start, "end": now, "floor_id": floor, "ceiling_id": NO_CEILING_ID},
    ).fetchone()
    assert tail is not None
    succeeded, failed, duration_sum, duration_count = (
        a + b for a, b in zip(totals, tail, strict=True)
    )
    avg = float(duration_sum) / int(duration_count) if duration_count else None
    return WindowStats(int(succeeded), int(failed), avg, source)


def _minute_after(value: datetime) -> datetime:
    """The first whole minute at or after `value` (history buckets are minutes)."""
    floor = value.replace(second=0, microsecond=0)
    return floor if floor == value else floor + timedelta(minutes=1)


def load_worker_health(
    conn: psycopg.Connection, *, healthy_heartbeat_s: float = 120
) -> WorkerHealth:
    params = {"cap": COUNT_CAP}
    with conn.pipeline():
        workers_cur = conn.execute(sql.WORKERS, params)
        orphaned_cur = conn.execute(sql.ORPHANED, params)
    workers = [_worker_row(row, healthy_heartbeat_s) for row in workers_cur.fetchall()]
    orphaned_row = orphaned_cur.fetchone()
    orphaned = int(orphaned_row[0]) if orphaned_row else 0
    unhealthy = [w for w in workers if not w.healthy]
    stalled_rows = conn.execute(
        sql.STALLED_JOBS,
        {
            "unhealthy_ids": [w.worker_id for w in unhealthy],
            "limit": STALLED_LIST_LIMIT,
            "cap": COUNT_CAP,
        },
    ).fetchall()
    return WorkerHealth(
        total_workers=len(workers),
        active_workers=len(workers) - len(unhealthy),
        jobs_in_progress=sum(w.jobs for w in workers) + orphaned,
        stalled_jobs=sum(w.jobs for w in unhealthy) + orphaned,
        workers=workers,
        stalled=[
            StalledJob(id=int(job_id), queue=queue, task=task, worker_id=worker_id)
            for job_id, queue, task, worker_id in stalled_rows
        ],
    )


def _worker_row(row: tuple[Any, ...], healthy_heartbeat_s: float) -> WorkerRow:
    worker_id, hostname, pid, concurrency, cpu, memory, heartbeat, age, jobs, name, queues = row
    return WorkerRow(
        worker_id=int(worker_id),
        hostname=hostname,
        pid=pid,
        healthy=is_worker_healthy(float(age), cpu, healthy_heartbeat_s),
        jobs=int(jobs),
        max_jobs=concurrency,
        cpu_percent=cpu,
        memory_mb=memory,
        last_heartbeat=_utc(heartbeat),
        heartbeat_age_s=float(age),
        worker_name=name,
        queues=list(queues) if queues is not None else None,
    )


def load_failed_jobs(conn: psycopg.Connection, *, limit: int = 50) -> FailedJobs:
    """The exact number of failed jobs (the ledger) and the newest failures, read from our
    list of failed jobs as the failed-jobs page does."""
    page = list_failed_jobs(conn, FailedJobFilter(), limit=limit)
    ids = [row["id"] for row in page.rows]
    with conn.pipeline():
        total_cur = conn.execute(sql.FAILED_TOTAL)
        args_cur = conn.execute(
            sql.FAILED_ARGS,
            {
                "ids": ids,
                "max_args_bytes": MAX_ARGS_BYTES,
                "preview_chars": PAYLOAD_PREVIEW_CHARS * 2,
            },
        )
        errors_cur = conn.execute(sql.LATEST_ERRORS, {"ids": ids, "max_chars": MAX_ERROR_CHARS})
    total_row = total_cur.fetchone()
    args = {job_id: (value, text) for job_id, value, text in args_cur.fetchall()}
    errors = dict(errors_cur.fetchall())
    jobs = [
        FailedJobRow(
            id=int(row["id"]),
            queue=row["queue_name"],
            task=row["task_name"],
            error=errors.get(row["id"]),
            payload_preview=preview_args(*args.get(row["id"], (None, None))),
            failed_at=row["failed_at"],
            attempts=int(row["attempts"]),
        )
        for row in page.rows
    ]
    return FailedJobs(total_failed_jobs=int(total_row[0]) if total_row else 0, jobs=jobs)


def load_snapshot(
    conn: psycopg.Connection,
    *,
    window_seconds: int = 3600,
    healthy_heartbeat_s: float = 120,
    failed_limit: int = 50,
    extra_periodic: list[PeriodicDefinition] | None = None,
    upcoming_limit: int = 10,
) -> Snapshot:
    row = conn.execute(sql.NOW).fetchone()
    assert row is not None
    return Snapshot(
        generated_at=_utc(row[0]),
        queue_stats=load_queue_stats(conn, window_seconds=window_seconds),
        worker_health=load_worker_health(conn, healthy_heartbeat_s=healthy_heartbeat_s),
        failed_jobs=load_failed_jobs(conn, limit=failed_limit),
        scheduler=load_scheduler(conn, extra_periodic=extra_periodic, limit=upcoming_limit),
    )
