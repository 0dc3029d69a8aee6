"""`jobdash jobs`, `jobdash cancel`, `jobdash abort`: the Jobs page for scripts and runbooks,
through the same read model and actions (actor: the OS user)."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
from typing import cast

from jobdash.app.actions import explorer
from jobdash.app.actions import jobs as actions
from jobdash.app.cli.actions import EXIT_STATUS
from jobdash.app.cli.common import (
    add_database_argument,
    add_raw_command,
    cli_identity,
    command_connection,
    report,
)
from jobdash.app.read.job_filter import STATES, JobFilter
from jobdash.app.read.jobs import EXPORT_HEADER, export_jobs, export_row
from jobdash.app.read.models import to_jsonable
from jobdash.app.rules.csv_format import write_csv
from jobdash.core.errors import ActionError, CommandError, FilterError
from jobdash.core.settings import load_settings

MAX_LIMIT = 1_000_000
# Filter options: (option, JobFilter field, help).
FILTERS = [
    ("--state", "state", f"one of {', '.join(STATES)}"),
    ("--queue", "queue", "queue name"),
    ("--task", "task", "task name"),
    ("--args", "args", 'args contain this: JSON ({"customer_id": 42}) or key=value'),
    ("--ids", "ids", "job ids, comma-separated (a filter)"),
    ("--lock", "lock", "lock"),
    ("--queueing-lock", "queueing_lock", "queueing lock"),
    ("--worker", "worker", "Procrastinate worker id"),
    ("--priority-min", "priority_min", "priority at least"),
    ("--priority-max", "priority_max", "priority at most"),
    ("--deferred-since", "deferred_since", "deferred at or after (ISO 8601)"),
    ("--deferred-until", "deferred_until", "deferred before (ISO 8601)"),
    ("--finished-since", "finished_since", "finished at or after (ISO 8601)"),
    ("--finished-until", "finished_until", "finished before (ISO 8601)"),
]
CANCEL_STATES = ("ready", "scheduled")


def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    for option, field, help_text in FILTERS:
        group.add_argument(option, dest=f"f_{field}", metavar="VALUE", help=help_text)


def job_filter(args: argparse.Namespace) -> JobFilter:
    raw = {field: getattr(args, f"f_{field}") for _, field, _ in FILTERS}
    try:
        return JobFilter.from_query_params(
            {k: v for k, v in raw.items() if v is not None}, load_settings().redact_args
        )
    except FilterError as exc:
        raise CommandError(str(exc)) from None


def _has_filters(args: argparse.Namespace) -> bool:
    return any(getattr(args, f"f_{field}") is not None for _, field, _ in FILTERS)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = add_raw_command(
        subparsers,
        "jobs",
        run_jobs,
        help="list jobs in any state, filtered (CSV or JSON, args redacted)",
        description="List the newest jobs matching the filters, newest first, up to --limit. Args "
        "values of redacted keys (JOBDASH_REDACT_ARGS) are shown as ••••; a search on a "
        "redacted key is refused. CSV: UTF-8, a header row, ISO 8601 UTC times.",
    )
    _add_filters(jobs)
    jobs.add_argument("--format", choices=["csv", "json"], default="csv")
    jobs.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (100)")
    add_database_argument(jobs)

    cancel = add_raw_command(
        subparsers,
        "cancel",
        run_cancel,
        help="cancel waiting jobs (by id, or all matching the filters)",
        description="Cancel waiting (todo) jobs with Procrastinate's cancel "
        "(procrastinate_cancel_job_v1): they become cancelled, or with --delete are deleted as "
        "Procrastinate's cancel allows (not archived). Jobs not waiting are skipped and "
        "reported. --all-matching cancels the ready jobs matching the filters (--state "
        "scheduled for scheduled ones), in batches of 1,000.",
        epilog=EXIT_STATUS,
    )
    cancel.add_argument("ids", nargs="*", metavar="ID", help="job ids")
    cancel.add_argument("--all-matching", action="store_true", help="every job matching")
    cancel.add_argument("--delete", action="store_true", help="delete instead of cancelling")
    _add_filters(cancel)
    add_database_argument(cancel)

    abort = add_raw_command(
        subparsers,
        "abort",
        run_abort,
        help="request the abort of running jobs",
        description="Request the abort of running (doing) jobs as Procrastinate does "
        "(procrastinate_cancel_job_v1 with abort): the worker cancels an async task; a "
        "sync task stops only if it checks context.should_abort(). Until the worker acts "
        "the job shows as abort requested.",
        epilog=EXIT_STATUS,
    )
    abort.add_argument("ids", nargs="+", metavar="ID", help="job ids")
    add_database_argument(abort)


def run_jobs(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= MAX_LIMIT:
        raise CommandError(f"--limit must be between 1 and {MAX_LIMIT}")
    chosen = job_filter(args)
    settings = load_settings()
    with command_connection(args, statement_timeout_ms=settings.statement_timeout_ms) as conn:
        rows = export_jobs(conn, chosen, args.limit, settings.search_scan_jobs)
    if args.format == "json":
        keys = EXPORT_HEADER
        for row in rows:
            record = dict(zip(keys, export_row(row), strict=True))
            print(json.dumps(to_jsonable(record), ensure_ascii=False, sort_keys=False))
    else:
        cast(io.TextIOWrapper, sys.stdout).reconfigure(newline="")
        write_csv(EXPORT_HEADER, (export_row(row) for row in rows), sys.stdout)
    return 0


def _ids(args: argparse.Namespace) -> list[int]:
    try:
        return actions.parse_job_ids(args.ids)
    except ActionError as exc:
        raise CommandError(str(exc)) from None


def _progress(result: actions.ActionResult) -> None:
    done = f"  … {result.processed:,} of {result.total or 0:,} processed"
    print(done, file=sys.stderr, flush=True)


def run_cancel(args: argparse.Namespace) -> int:
    ids = _ids(args)
    if args.all_matching and ids:
        raise CommandError("give job ids or --all-matching, not both")
    if not args.all_matching and not ids:
        raise CommandError("give at least one job id (or --all-matching)")
    if not args.all_matching and _has_filters(args):
        raise CommandError("filters apply only with --all-matching")
    chosen = job_filter(args) if args.all_matching else None
    if chosen is not None:
        if chosen.state is None:
            chosen = dataclasses.replace(chosen, state="ready")
        elif chosen.state not in CANCEL_STATES:
            raise CommandError("--state: only waiting jobs (ready or scheduled) can be cancelled")
    with command_connection(args) as conn:
        if chosen is not None:
            scan = load_settings().search_scan_jobs
            result = explorer.cancel_all_matching(
                conn, chosen, cli_identity(), delete=args.delete, progress=_progress, scan=scan
            )
        else:
            result = explorer.cancel_jobs(conn, ids, cli_identity(), delete=args.delete)
    return report(result)


def run_abort(args: argparse.Namespace) -> int:
    ids = _ids(args)
    with command_connection(args) as conn:
        result = explorer.abort_jobs(conn, ids, cli_identity())
    return report(result)
