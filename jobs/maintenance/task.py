"""The periodic `rollup` task: history buckets, their retention, purging archived jobs, alerts.

Instrumented workers add this blueprint (`app.add_tasks_from(blueprint, namespace="jobdash")`)
and listen on MAINTENANCE_QUEUE, so history is recorded once a minute while any worker runs.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from procrastinate import Blueprint, JobContext, PsycopgConnector, SyncPsycopgConnector
from procrastinate.exceptions import AppNotOpen
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from jobdash.core.database import connect, resolve_database_url
from jobdash.core.settings import load_settings
from jobdash.jobs.maintenance.alerts import run_alerts_quietly
from jobdash.jobs.maintenance.archive_purge import purge_archived_jobs
from jobdash.jobs.maintenance.failed_counts import compact_quietly
from jobdash.jobs.maintenance.rollup import RollupReport, run_maintenance, run_rollup

logger = logging.getLogger(__name__)

MAINTENANCE_QUEUE = "jobdash"
ROLLUP_CRON = "* * * * *"
# A sync task cannot be cancelled: a connect hanging on an unreachable host would hold up the
# worker's shutdown (and so its restart after an outage) for as long as the kernel retries.
CONNECT_TIMEOUT_S = 10


def _connection_string(context: JobContext) -> str:
    """The worker's own database, read through public APIs only: the `pool` property of
    Procrastinate's PsycopgConnector / SyncPsycopgConnector (3.10) and the `conninfo` and
    `kwargs` of psycopg_pool's pools (each a value or, since psycopg_pool 3.3, a callable).
    Another kind of connector: Jobdash's own settings."""
    connector = context.app.connector
    pool: AsyncConnectionPool | ConnectionPool | None = None
    if isinstance(connector, PsycopgConnector | SyncPsycopgConnector):
        try:
            pool = connector.pool
        except AppNotOpen:
            pool = None
    conninfo = _resolved(getattr(pool, "conninfo", None))
    kwargs = _resolved(getattr(pool, "kwargs", None))
    if isinstance(conninfo, str):
        usable = {
            k: v
            for k, v in (kwargs if isinstance(kwargs, dict) else {}).items()
            if isinstance(v, str | int) and not isinstance(v, bool)
        }
        if conninfo or usable:
            return make_conninfo(conninfo, **usable)
    return resolve_database_url(load_settings())


def _resolved(value: Any) -> Any:
    """A pool parameter's value; None for an async callable (this task runs synchronously)."""
    if inspect.iscoroutinefunction(value):
        return None
    return value() if callable(value) else value


def maintain(conninfo: str) -> RollupReport:
    """One maintenance pass: rollup, downsampling/retention, archive purge."""
    settings = load_settings()
    with connect(
        conninfo, application_name="jobdash-maintenance", connect_timeout_s=CONNECT_TIMEOUT_S
    ) as conn:
        report = run_rollup(conn)
        run_maintenance(
            conn,
            minute_retention_days=settings.minute_retention_days,
            hour_retention_days=settings.hour_retention_days,
        )
        compact_quietly(conn)
        try:
            purge_archived_jobs(conn, settings.archive_retention_days)
        except Exception:
            # Purging is housekeeping: it must never make history recording fail.
            logger.exception("purging archived jobs failed")
    return report


def build_blueprint() -> Blueprint:
    """A fresh blueprint (add_tasks_from renames a blueprint's tasks, so one per App)."""
    new = Blueprint()

    @new.periodic(cron=ROLLUP_CRON)
    @new.task(
        name="rollup", queue=MAINTENANCE_QUEUE, pass_context=True, queueing_lock="jobdash-rollup"
    )
    def rollup(context: JobContext, /, timestamp: int, **_: Any) -> None:
        conninfo = _connection_string(context)
        try:
            report = maintain(conninfo)
            logger.info(
                "jobdash rollup: %s",
                "skipped (another run holds the lock)" if report.skipped else report.summary(),
            )
        finally:
            # Alerts are evaluated even when the rollup failed (one rule watches for that).
            run_alerts_quietly(conninfo)

    return new


blueprint = build_blueprint()
