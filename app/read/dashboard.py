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
    Scheduler,
    Snapshot,
    StalledJob,
    UpcomingTask,
    WorkerHealth,
    WorkerRow,
)
from jobdash.app.rules import schedules
from jobdash.app.rules.health import is_worker_healthy
from jobdash.app.rules.text import (
    PAYLOAD_PREVIEW_CHARS,
    cut_text,
    payload_preview,
    relative_time,
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


def _periodic_id(definition: PeriodicDefinition) -> str:
    if definition.periodic_id:
        return f"{definition.task_name}[{definition.periodic_id}]"
    return definition.task_name


def _periodic_task(
    definition: PeriodicDefinition, last_run: datetime | None, now: datetime
) -> UpcomingTask | None:
    if not schedules.is_valid_cron(definition.cron):
        logger.warning(
            "periodic task %s has an invalid cron %r", definition.task_name, definition.cron
        )
        return None
    tick = schedules.latest_tick(definition.cron, now)
    due = schedules.is_periodic_due(tick, last_run, now, known_since=definition.known_since)
    # A missed run is listed at the tick it missed (in the past, so it sorts first).
    next_run = tick if due else schedules.next_tick(definition.cron, now)
    return UpcomingTask(
        id=_periodic_id(definition),
        task=definition.task_name,
        schedule_type=schedules.schedule_type(definition.cron),
        schedule=definition.cron,
        schedule_description=schedules.describe_schedule(definition.cron),
        next_run=_utc(next_run),
        next_run_relative=relative_time(next_run, now),
        is_due=due,
        last_run=_utc(last_run) if last_run else None,
        queue=definition.queue,
    )


def load_scheduler(
    conn: psycopg.Connection,
    *,
    extra_periodic: list[PeriodicDefinition] | None = None,
    limit: int = 10,
) -> Scheduler:
    rows = conn.execute(sql.SCHEDULER, {"limit": limit}).fetchall()
    now = _utc(rows[0][1])
    definitions: dict[tuple[str, str], PeriodicDefinition] = {}
    last_runs: dict[tuple[str, str], datetime | None] = {}
    onetime: list[UpcomingTask] = []
    onetime_due = onetime_total = 0
    onetime_next: datetime | None = None
    for kind, at, task_name, periodic_id, cron, queue, job_id, n, since in rows[1:]:
        if kind == "periodic":
            key = (task_name, periodic_id)
            definitions[key] = PeriodicDefinition(
                task_name=task_name, periodic_id=periodic_id, cron=cron, queue=queue,
                known_since=since,
            )  # fmt: skip
            last_runs[key] = at
        elif kind == "onetime_counts":
            onetime_due, onetime_total = int(job_id), int(n)
            onetime_next = _utc(at) if at else None
        else:
            onetime.append(
                UpcomingTask(
                    id=str(job_id),
                    task=task_name,
                    schedule_type="onetime",
                    schedule=None,
                    schedule_description=schedules.describe_schedule(None),
                    next_run=_utc(at),
                    next_run_relative=relative_time(at, now),
                    is_due=schedules.is_onetime_due(at, now),
                    last_run=None,
                    queue=queue,
                )
            )
    extra = [d for d in extra_periodic or [] if (d.task_name, d.periodic_id) not in definitions]
    if extra:
        defers = conn.execute(
            sql.PERIODIC_DEFERS, {"task_names": sorted({d.task_name for d in extra})}
        ).fetchall()
        known = {(t, p): at for t, p, at in defers}
        for d in extra:
            definitions[(d.task_name, d.periodic_id)] = d
            last_runs[(d.task_name, d.periodic_id)] = known.get((d.task_name, d.periodic_id))
    periodic = [
        task
        for key, definition in sorted(definitions.items())
        if (task := _periodic_task(definition, last_runs[key], now)) is not None
    ]
    future = [t.next_run for t in periodic if t.next_run > now]
    if onetime_next:
        future.append(onetime_next)
    upcoming = sorted(periodic + onetime, key=lambda t: (t.next_run, t.id))[:limit]
    return Scheduler(
        total_scheduled_tasks=len(definitions) + onetime_total,
        due_tasks=sum(t.is_due for t in periodic) + onetime_due,
        next_execution=min(future) if future else None,
        upcoming=upcoming,
    )


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
