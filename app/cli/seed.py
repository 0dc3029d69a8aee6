"""`jobdash seed`: fill a database with a realistic dataset (for demos and benchmarks)."""

from __future__ import annotations

import argparse

import psycopg

from jobdash.app.cli.common import add_command, database_url
from jobdash.core.errors import CommandError
from jobdash.jobs.demo.seed import seed


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "seed",
        run,
        help="add a realistic set of jobs, events, errors, workers and periodic tasks",
        description="Add N jobs spread over DAYS days (about 94%% succeeded, 5%% failed, the "
        "rest todo/doing/cancelled; a busy last hour), with their events, error rows, four "
        "workers and periodic definitions. Set-based SQL: 1,000,000 jobs take about a minute.",
    )
    parser.add_argument("--jobs", type=int, required=True, metavar="N", help="jobs to add")
    parser.add_argument("--days", type=float, default=7, help="days of history (default 7)")
    parser.add_argument(
        "--last-hour-per-min",
        type=int,
        default=1000,
        metavar="N",
        help="jobs per minute in the last hour (default 1000; at most 60%% of all jobs)",
    )


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1 or args.jobs > 50_000_000:
        raise CommandError("--jobs must be between 1 and 50000000")
    if args.days * 24 <= 1:
        raise CommandError("--days must cover more than one hour")
    if args.last_hour_per_min < 0:
        raise CommandError("--last-hour-per-min must not be negative")
    url = database_url(args)
    try:
        report = seed(url, args.jobs, days=args.days, last_hour_per_min=args.last_hour_per_min)
    except psycopg.errors.UndefinedTable as exc:
        missing = exc.diag.message_primary
        raise CommandError(f"schema missing ({missing}): run `jobdash migrate`") from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise CommandError(f"not allowed: {exc.diag.message_primary}") from None
    print(
        f"seeded {report.jobs} jobs, {report.events} events, {report.errors} error rows, "
        f"{report.workers} workers, {report.periodic_tasks} periodic tasks "
        f"in {report.seconds:.1f} s"
    )
    return 0
