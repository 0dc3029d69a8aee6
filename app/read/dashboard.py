"""Dashboard loaders: one per panel, SQL (app/dashboard_sql.py) → records (app/models.py).

Each loader takes a psycopg 3 connection and does its work in one or two round trips. Rules
(health, relative time, due-ness, previews) come from app/schedules.py. "Now" is the database's.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import psycopg

from jobdash.app.read import dashboard_sql as sql
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
from jobdash.app.rules.text import (
    PAYLOAD_PREVIEW_CHARS,
    cut_text,
    payload_preview,
)
from jobdash.core.periodic import PeriodicDefinition

logger = logging.getLogger(__name__)

STALLED_LIST_LIMIT = 100
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
    rows = conn.execute(sql.QUEUE_STATS, {"window_seconds": window_seconds}).fetchall()
    queues: list[QueueRow] = []
    succeeded = failed = 0
    avg_ms: float | None = None
    for kind, name, ready, scheduled, doing, failed_n, oldest_age, avg_duration in rows:
        if kind == "window":
            # The window row carries (succeeded, failed) in the failed / oldest age columns.
            succeeded, failed = int(failed_n or 0), int(oldest_age or 0)
            avg_ms = float(avg_duration) if avg_duration is not None else None
            continue
        queues.append(
            QueueRow(
                name=name,
                ready=int(ready),
                scheduled=int(scheduled),
                doing=int(doing),
                failed=int(failed_n),
                oldest_ready_age_s=max(0.0, float(oldest_age)) if oldest_age is not None else None,
            )
        )
    total = succeeded + failed
    return QueueStats(
        current_queue_size=sum(q.ready for q in queues),
        window_seconds=window_seconds,
        successful_jobs=succeeded,
        failed_jobs=failed,
        total_jobs=total,
        success_rate=(succeeded / total * 100) if total else None,
        avg_execution_time_ms=avg_ms if total else None,
        queues=queues,
    )


def load_worker_health(
    conn: psycopg.Connection, *, healthy_heartbeat_s: float = 120
) -> WorkerHealth:
    workers = []
    for row in conn.execute(sql.WORKERS).fetchall():
        worker_id, hostname, pid, concurrency, cpu, memory, heartbeat, age, jobs, name, queues = (
            row
        )
        workers.append(
            WorkerRow(
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
        )
    healthy_ids = [w.worker_id for w in workers if w.healthy]
    rows = conn.execute(
        sql.DOING_AND_STALLED, {"healthy_ids": healthy_ids, "limit": STALLED_LIST_LIMIT}
    ).fetchall()
    in_progress = stalled_count = 0
    stalled: list[StalledJob] = []
    for kind, job_id, queue, task, worker_id in rows:
        if kind == "counts":
            in_progress, stalled_count = int(job_id), int(queue)
        else:
            stalled.append(StalledJob(id=int(job_id), queue=queue, task=task, worker_id=worker_id))
    return WorkerHealth(
        total_workers=len(workers),
        active_workers=len(healthy_ids),
        jobs_in_progress=in_progress,
        stalled_jobs=stalled_count,
        workers=workers,
        stalled=stalled,
    )


def _preview(args: Any, args_text: str | None) -> str:
    if args is not None:
        return payload_preview(args)
    # Too big to ship whole: jsonb's text (spaces after separators) is close enough to preview.
    return cut_text(args_text or "")


def load_failed_jobs(conn: psycopg.Connection, *, limit: int = 50) -> FailedJobs:
    rows = conn.execute(
        sql.FAILED_JOBS,
        {
            "limit": limit,
            "max_args_bytes": MAX_ARGS_BYTES,
            "preview_chars": PAYLOAD_PREVIEW_CHARS * 2,
            "max_error_chars": MAX_ERROR_CHARS,
        },
    ).fetchall()
    total = 0
    jobs: list[FailedJobRow] = []
    for kind, job_id, queue, task, args, args_text, failed_at, attempts, error in rows:
        if kind == "total":
            total = int(job_id)
            continue
        jobs.append(
            FailedJobRow(
                id=int(job_id),
                queue=queue,
                task=task,
                error=error,
                payload_preview=_preview(args, args_text),
                failed_at=_utc(failed_at) if failed_at else None,
                attempts=int(attempts),
            )
        )
    return FailedJobs(total_failed_jobs=total, jobs=jobs)


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
