"""What pages and panels read, through the process-wide SharedCache (see shared_cache.py).

A `Source` names a loader of app/read and the refresh interval of what shows it. Pages call
`fetch(SOURCE, *args)` and get a `Result` (data, when it was read, stale notice); they never
open a connection or hold SQL. After an action, `invalidate()` makes every session read afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

import psycopg

from jobdash.app.cache.shared_cache import Result, SharedCache, cache_ttl
from jobdash.app.read import (
    alerts,
    audit,
    dashboard,
    failed_jobs,
    history,
    instrumentation_health,
    job_facts,
    jobs,
    locks,
    queues,
    replica,
    schedule,
    task_totals,
)
from jobdash.app.read.job_filter import JobFilter
from jobdash.core import pool, telemetry
from jobdash.core.app_loader import load_app
from jobdash.core.errors import ConfigError, describe_error
from jobdash.core.periodic import PeriodicDefinition, periodic_definitions
from jobdash.core.settings import Settings, load_settings

FAILED_JOBS_LIMIT = 50
UPCOMING_LIMIT = 10
# Pages without a timer of their own re-read at most this often (actions invalidate at once).
PAGE_REFRESH_S = 5.0
FILTER_OPTIONS_REFRESH_S = 60.0

CACHE = SharedCache()

T = TypeVar("T")
# Covariant: a Source[QueueStats] is a Source[object] wherever only its name and interval count.
T_co = TypeVar("T_co", covariant=True)


def _page_refresh(settings: Settings) -> float:
    return PAGE_REFRESH_S


@dataclass(frozen=True)
class Source(Generic[T_co]):
    """A loader `load(conn, settings, *args)` of one kind of data (T_co) and the refresh
    interval of what shows it (a page's, unless said otherwise)."""

    name: str
    load: Callable[..., T_co]
    interval: Callable[[Settings], float] = _page_refresh


def _scheduler(conn: psycopg.Connection, settings: Settings) -> schedule.ScheduleState:
    extra = app_periodic_definitions(settings.app_path)[0] if settings.app_path else None
    return schedule.load_schedule_state(conn, extra_periodic=extra, limit=UPCOMING_LIMIT)


QUEUE_STATS = Source(
    "queue_stats", lambda conn, s: dashboard.load_queue_stats(conn), lambda s: s.queue_refresh_s
)
WORKER_HEALTH = Source(
    "worker_health",
    lambda conn, s: dashboard.load_worker_health(conn, healthy_heartbeat_s=s.heartbeat_healthy_s),
    lambda s: s.workers_refresh_s,
)
FAILED_JOBS = Source(
    "failed_jobs",
    lambda conn, s: dashboard.load_failed_jobs(conn, limit=FAILED_JOBS_LIMIT),
    lambda s: s.failed_refresh_s,
)
SCHEDULER = Source("scheduler", _scheduler, lambda s: s.scheduler_refresh_s)
PANELS = (QUEUE_STATS, WORKER_HEALTH, FAILED_JOBS, SCHEDULER)
INSTRUMENTATION = Source(
    "instrumentation",
    lambda conn, s: instrumentation_health.load_instrumentation_health(
        conn, live_s=s.heartbeat_healthy_s
    ),
    lambda s: max(s.workers_refresh_s, s.failed_refresh_s),
)

FAILED_PAGE = Source(
    "failed_page",
    lambda conn, s, job_filter, limit, before: failed_jobs.load_failed_page(
        conn, job_filter, limit, before, scan=s.search_scan_failed_jobs
    ),
)
FAILED_FILTER_OPTIONS = Source(
    "failed_filter_options", lambda conn, s: failed_jobs.failed_queues_and_tasks(conn)
)
DELETED_JOBS = Source(
    "deleted_jobs", lambda conn, s, limit: failed_jobs.list_deleted_jobs(conn, limit=limit)
)
AUDIT_LOG = Source(
    "audit_log",
    lambda conn, s, audit_filter, limit: audit.list_audit_log(conn, audit_filter, limit=limit),
)
HISTORY = Source(
    "history",
    lambda conn, s, range_name, queue, task: history.load_history(
        conn, range_name, queue=queue, task=task,
        minute_retention_days=s.minute_retention_days,
    ),
    lambda s: s.history_refresh_s,
)  # fmt: skip
HISTORY_FILTER_OPTIONS = Source(
    "history_filter_options",
    lambda conn, s: history.load_filter_options(conn),
    lambda s: FILTER_OPTIONS_REFRESH_S,
)

JOBS_PAGE = Source(
    "jobs_page",
    lambda conn, s, job_filter, limit, before: jobs.load_jobs_page(
        conn, job_filter, limit, before, scan=s.search_scan_failed_jobs
    ),
)
JOBS_COUNT = Source(
    "jobs_count",
    lambda conn, s, job_filter: jobs.count_jobs(conn, job_filter, scan=s.search_scan_jobs),
)
STATE_COUNTS = Source(
    "state_counts", lambda conn, s: jobs.load_state_counts(conn), lambda s: s.queue_refresh_s
)
JOB_VIEW = Source(
    "job_view",
    lambda conn, s, job_id: job_facts.load_job_view(conn, job_id, live_s=s.heartbeat_healthy_s),
)
QUEUES = Source(
    "queues",
    lambda conn, s: queues.load_queues(conn, live_s=s.heartbeat_healthy_s),
    lambda s: s.queue_refresh_s,
)
LOCKS = Source("locks", lambda conn, s: locks.load_locks(conn))


def export_jobs(job_filter: JobFilter, limit: int) -> list[dict[str, jobs.ExportCell]]:
    """Up to `limit` jobs matching the filter as CSV rows (whole args, redacted), read now on a
    pooled connection (the download thread has no session)."""
    settings = load_settings()
    with pool.connection() as conn:
        rows = jobs.export_jobs(conn, job_filter, limit, settings.search_scan_jobs)
    return [dict(zip(jobs.EXPORT_HEADER, jobs.export_row(r), strict=True)) for r in rows]


# For /metrics (a scrape every 15 s reads what a viewer's panels read) and the footer.
METRICS_REFRESH_S = 10.0
ROLLUP_STATUS = Source(
    "rollup_status",
    lambda conn, s: history.load_recording_status(conn),
    lambda s: METRICS_REFRESH_S,
)
_TASK_TOTALS: dict[str, task_totals.TaskTotals] = {}
TASK_TOTALS = Source(
    "task_totals",
    lambda conn, s, url: _TASK_TOTALS.setdefault(url, task_totals.TaskTotals()).load(conn),
    lambda s: METRICS_REFRESH_S,
)
REPLICA_STATUS = Source(
    "replica_status",
    lambda conn, s: replica.load_replica_status(conn),
    lambda s: s.queue_refresh_s,
)

ALERTS = Source("alerts", lambda conn, s: alerts.load_alert_overview(conn))


def refresh_interval(source: Source[object], settings: Settings | None = None) -> float:
    return float(source.interval(settings or load_settings()))


def fetch(source: Source[T], *args: Hashable) -> Result[T]:
    """The source's data for these arguments: cached, or the last good data marked stale."""
    settings = load_settings()
    url = pool.read_database_url()

    def load() -> T:
        with telemetry.timed_query(source.name), pool.connection(url) as conn:
            return source.load(conn, settings, *args)

    ttl = cache_ttl(refresh_interval(source, settings))
    return CACHE.fetch((source.name, url, *args), load, ttl_s=ttl)


def instrumentation_notice(panel: Source[object]) -> str | None:
    """One line for this panel when the workers' instrumentation has stopped writing what it
    shows (see app/read/instrumentation_health.py); None when all is well or unknown."""
    notices: dict[str, Callable[[instrumentation_health.InstrumentationHealth], str | None]] = {
        WORKER_HEALTH.name: lambda h: h.workers_notice(),
        FAILED_JOBS.name: lambda h: h.errors_notice(),
    }
    if panel.name not in notices:
        return None
    health = fetch(INSTRUMENTATION).data
    return notices[panel.name](health) if health is not None else None


def invalidate(*sources: Source[object]) -> None:
    """Drop what these sources (all when none are named) read, for every session: call it after
    a write so the next run reads what the write did."""
    CACHE.invalidate(*(source.name for source in sources))
    pool.UNREACHABLE.clear()


@lru_cache(maxsize=8)
def _periodic_from_app(app_path: str) -> list[PeriodicDefinition]:
    return periodic_definitions(load_app(app_path))


def app_periodic_definitions(app_path: str) -> tuple[list[PeriodicDefinition], str | None]:
    """Periodic definitions of the App named by JOBDASH_APP, or ([], why they are missing)."""
    try:
        return _periodic_from_app(app_path), None
    except Exception as exc:
        return [], f"periodic tasks of {app_path} not shown: {describe_error(exc)}"


def settings_or_error() -> tuple[Settings | None, str | None]:
    """The settings, or the one-line reason they cannot be read (the page shows it)."""
    try:
        return load_settings(), None
    except ConfigError as exc:
        return None, describe_error(exc)
