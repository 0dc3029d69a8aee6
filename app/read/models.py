"""What the dashboard's loaders return: the contract of the panels and of `jobdash snapshot --json`.

Field names are the JSON keys. Times are timezone-aware UTC datetimes ("now" is the
database's now()); `to_jsonable` turns a record into ISO 8601 strings and plain types.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from jobdash.core.jsontypes import Json


@dataclass(frozen=True)
class QueueRow:
    name: str
    ready: int
    scheduled: int
    doing: int
    failed: int
    oldest_ready_age_s: float | None
    # Ready, scheduled and doing are counted up to QueueStats.count_cap; past it they are
    # lower bounds (`capped`) and the rollup's latest minute sample, when recent, estimates them.
    capped: bool = False
    ready_estimate: int | None = None
    scheduled_estimate: int | None = None
    doing_estimate: int | None = None
    estimated_at: datetime | None = None


@dataclass(frozen=True)
class QueueStats:
    current_queue_size: int
    window_seconds: int
    successful_jobs: int
    failed_jobs: int
    total_jobs: int
    success_rate: float | None
    avg_execution_time_ms: float | None
    queues: list[QueueRow] = field(default_factory=list)
    count_cap: int | None = None
    window_source: str = "history"  # or "raw events" when no rollup runs


@dataclass(frozen=True)
class WorkerRow:
    worker_id: int
    hostname: str | None
    pid: int | None
    healthy: bool
    jobs: int
    max_jobs: int | None
    cpu_percent: float | None
    memory_mb: float | None
    last_heartbeat: datetime
    heartbeat_age_s: float
    worker_name: str | None = None
    queues: list[str] | None = None


@dataclass(frozen=True)
class StalledJob:
    id: int
    queue: str
    task: str
    worker_id: int | None


@dataclass(frozen=True)
class WorkerHealth:
    total_workers: int
    active_workers: int
    jobs_in_progress: int
    stalled_jobs: int
    workers: list[WorkerRow] = field(default_factory=list)
    stalled: list[StalledJob] = field(default_factory=list)


@dataclass(frozen=True)
class FailedJobRow:
    id: int
    queue: str
    task: str
    error: str | None
    payload_preview: str
    failed_at: datetime | None
    attempts: int


@dataclass(frozen=True)
class FailedJobs:
    total_failed_jobs: int
    jobs: list[FailedJobRow] = field(default_factory=list)


@dataclass(frozen=True)
class UpcomingTask:
    id: str
    task: str
    schedule_type: str  # "cron" | "interval" | "onetime"
    schedule: str | None  # cron text; None for one-time jobs
    schedule_description: str
    next_run: datetime
    next_run_relative: str
    is_due: bool
    last_run: datetime | None
    queue: str | None = None
    # A missed periodic tick older than the deferrer's max_delay: Procrastinate skips it.
    skipped_if_late: bool = False
    # Disabled by an operator (instrumented workers defer none of its ticks): since when, by whom.
    disabled_at: datetime | None = None
    disabled_by: str | None = None


@dataclass(frozen=True)
class Scheduler:
    total_scheduled_tasks: int
    due_tasks: int
    next_execution: datetime | None
    upcoming: list[UpcomingTask] = field(default_factory=list)
    periodic: list[UpcomingTask] = field(default_factory=list)  # every periodic task of the team
    maintenance: list[UpcomingTask] = field(default_factory=list)  # Jobdash's own (jobdash:…)
    # One-time jobs are counted among the oldest open jobs up to a cap: past it, lower bounds.
    onetime_capped: bool = False


@dataclass(frozen=True)
class Snapshot:
    generated_at: datetime
    queue_stats: QueueStats
    worker_health: WorkerHealth
    failed_jobs: FailedJobs
    scheduler: Scheduler


def to_jsonable(value: object) -> Json:
    """Dataclasses, lists and datetimes as JSON-ready values (datetimes in ISO 8601 UTC).

    The casts only say that the items of a container are values too (isinstance gives Any)."""
    if not inspect.isclass(value) and dataclasses.is_dataclass(value):
        fields = cast("tuple[dataclasses.Field[object], ...]", dataclasses.fields(value))
        return {f.name: to_jsonable(cast(object, getattr(value, f.name))) for f in fields}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in cast("list[object] | tuple[object, ...]", value)]
    if isinstance(value, dict):
        items = cast("dict[str, object]", value).items()
        return {k: to_jsonable(v) for k, v in items}
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    return cast(Json, value)
