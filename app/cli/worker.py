"""`jobdash worker`: run any Procrastinate App's worker, instrumented, on Jobdash's database."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from procrastinate import PsycopgConnector

from jobdash.app.cli.common import (
    add_command,
    database_url,
    parse_queues,
    positive_float,
    positive_int,
)
from jobdash.core.app_loader import load_app
from jobdash.core.database import connect, describe
from jobdash.core.errors import AppLoadError, CommandError, ConfigError, WorkerGaveUp
from jobdash.core.settings import load_settings
from jobdash.jobs.instrumentation import run_instrumented_worker
from jobdash.jobs.instrumentation.outages import pool_options
from jobdash.jobs.maintenance.alerts import check_alerts_at_start

DEFAULT_APP = "jobdash.jobs.demo.app:app"

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "worker",
        run,
        help="run an instrumented Procrastinate worker",
        description="Run the worker of a Procrastinate App with Jobdash's instrumentation "
        "(failed attempts, worker metrics, periodic schedules, history rollup) on the "
        "dashboard's database. Rides out database outages of up to "
        "JOBDASH_WORKER_OUTAGE_TOLERANCE_S seconds (default 300). Exit code 0 after Ctrl-C / "
        "SIGTERM, 1 when it gave up (the reason on stderr), 2 when it could not start.",
    )
    parser.add_argument(
        "--app",
        default=DEFAULT_APP,
        help=f"dotted.module:app of the Procrastinate App to run (default {DEFAULT_APP})",
    )
    parser.add_argument(
        "--queues",
        type=parse_queues,
        help="comma-separated queues to listen on (default: all). "
        "Jobdash's maintenance queue is added.",
    )
    parser.add_argument(
        "--concurrency", type=positive_int, default=1, help="jobs run at once (default 1)"
    )
    parser.add_argument("--name", help="worker name shown in logs and on the dashboard")
    parser.add_argument(
        "--shutdown-timeout",
        type=positive_float,
        help="seconds to let running jobs finish on stop before aborting them "
        "(default: wait for them)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=positive_float,
        default=10.0,
        help="seconds between worker heartbeats and metric updates (default 10)",
    )


MISSING_TABLES_SQL = """
SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NULL
"""
INSTRUMENTATION_TABLES = ["jobdash_job_errors", "jobdash_workers", "jobdash_periodic_tasks"]


def check_schema(url: str) -> None:
    """Refuse a database without Procrastinate's schema; warn when ours is missing (the
    worker still runs, uninstrumented parts log their failures)."""
    with connect(url) as conn:
        tables = ["procrastinate_jobs", *INSTRUMENTATION_TABLES]
        missing = [row[0] for row in conn.execute(MISSING_TABLES_SQL, (tables,))]
    if "procrastinate_jobs" in missing:
        raise CommandError(
            f"database {describe(url)} has no Procrastinate schema; run `jobdash migrate` first"
        )
    if missing:
        print(
            f"jobdash worker: warning: {', '.join(missing)} missing in {describe(url)}; "
            "run `jobdash migrate` to record errors, workers and schedules",
            file=sys.stderr,
            flush=True,
        )


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "verbose", False):
        # A worker's log is its jobs starting and finishing: Procrastinate's and ours at INFO.
        for name in ("procrastinate", "jobdash"):
            logging.getLogger(name).setLevel(logging.INFO)
    try:
        procrastinate_app = load_app(args.app)
    except AppLoadError as exc:
        raise CommandError(f"--app: {exc}") from None
    url = database_url(args)
    tolerance = load_settings().worker_outage_tolerance_s
    check_schema(url)
    try:
        check_alerts_at_start(url, {task.queue for task in procrastinate_app.tasks.values()})
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    options: dict[str, Any] = {
        "queues": args.queues,
        "concurrency": args.concurrency,
        "heartbeat_interval": args.heartbeat_interval,
        "update_heartbeat_interval": args.heartbeat_interval,
        "outage_tolerance_s": tolerance,
    }
    if args.name:
        options["name"] = args.name
    if args.shutdown_timeout:
        options["shutdown_graceful_timeout"] = args.shutdown_timeout
    connector = PsycopgConnector(
        conninfo=url,
        min_size=1,
        max_size=max(4, args.concurrency + 2),
        **pool_options(tolerance),
    )
    queues = ", ".join(args.queues) if args.queues else "all queues"
    print(
        f"jobdash worker: {args.app} on {queues} (database {describe(url)}); Ctrl-C to stop",
        flush=True,
    )
    # replace_connector (not the deprecated with_connector) keeps one App object: tasks that
    # defer other tasks from inside a job then use this database too.
    try:
        with procrastinate_app.replace_connector(connector):
            run_instrumented_worker(procrastinate_app, **options)
    except WorkerGaveUp as exc:
        # Non-zero, so that a supervisor restarting on failure restarts it.
        print(f"jobdash worker: error: {exc}", file=sys.stderr, flush=True)
        return 1
    print("jobdash worker: stopped", flush=True)
    return 0
