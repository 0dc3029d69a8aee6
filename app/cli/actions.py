"""`jobdash retry`, `jobdash delete`, `jobdash restore`, `jobdash export failed`: the
dashboard's actions for scripts and runbooks, through the same functions (actor: OS user)."""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TypedDict, cast

import psycopg

from jobdash.app.actions import jobs as actions
from jobdash.app.cli.common import (
    add_command,
    add_database_argument,
    add_raw_command,
    cli_identity,
    command_connection,
    database_url,
    report,
)
from jobdash.app.read.failed_jobs import (
    EXPORT_FAILED_HEADER,
    FailedExportRow,
    FailedJobFilter,
    export_failed_jobs_rows,
    parse_utc,
)
from jobdash.app.rules.csv_format import write_csv
from jobdash.core.auth.identity import Identity
from jobdash.core.database import connect
from jobdash.core.errors import ActionError, CommandError

EXIT_STATUS = """exit status:
  0  every job was acted on (or none matched)
  1  some jobs were skipped or not found: the summary and the "skipped ID: reason" lines say
     which and why (retrying again later, or the dashboard, can still do them)
  2  error: bad input, read-only mode, the database unreachable or failing; with
     --all-failed the batches finished before the error stay done (and audited)"""

RETRY_DESCRIPTION = (
    "Retry failed jobs with Procrastinate's own retry (procrastinate_retry_job_v2): failed → "
    "todo, attempts + 1, to run now or at --at. Jobs no longer failed are skipped and "
    "reported. Of failed jobs sharing a queueing lock only the first (lowest id) is retried: "
    "Procrastinate allows one waiting job per lock, so the others are skipped, naming the job "
    "that holds the lock. Recorded in the audit log with your OS user as actor, options "
    "included. --queue is a FILTER (with --all-failed: only jobs of this queue); "
    "--to-queue MOVES the retried jobs to another queue."
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bulk_commands = {
        "retry": (
            "retry failed jobs (by id, or all failed matching --queue/--task), optionally at a "
            "time, on another queue, with another priority",
            RETRY_DESCRIPTION,
        ),
        "delete": (
            "archive then delete failed jobs (restorable with `jobdash restore`)",
            "Delete failed jobs; each is archived first (row, events, errors) and can "
            "be restored until the archive retention purges it.",
        ),
    }
    for action, (help_text, description) in bulk_commands.items():
        parser = add_raw_command(
            subparsers, action, run, help=help_text, description=description, epilog=EXIT_STATUS
        )
        parser.add_argument("ids", nargs="*", metavar="ID", help="job ids")
        parser.add_argument(
            "--all-failed", action="store_true", help="every failed job matching the filters"
        )
        _add_filter_arguments(parser)
        if action == "retry":
            _add_retry_options(parser)
        add_database_argument(parser)
        parser.set_defaults(action=action)

    restore = add_raw_command(
        subparsers,
        "restore",
        run,
        help="restore deleted jobs from the archive",
        description="Put deleted jobs back exactly as they were (ids, events, errors).",
        epilog=EXIT_STATUS,
    )
    restore.add_argument("ids", nargs="+", metavar="ID", help="job ids")
    add_database_argument(restore)
    restore.set_defaults(action="restore")

    export = add_command(
        subparsers,
        "export",
        run_export,
        database_first=False,
        help="export failed jobs as CSV",
        description="Write every failed job matching the filters as CSV (UTF-8, header row, "
        "ISO 8601 UTC times, formula-like cells neutralised), streamed from the database.",
    )
    export.add_argument("table", choices=["failed"], help="what to export")
    export.add_argument("--format", choices=["csv"], default="csv")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    _add_filter_arguments(export)
    add_database_argument(export)


def _add_retry_options(parser: argparse.ArgumentParser) -> None:
    options = parser.add_argument_group("retry options (for ids and --all-failed alike)")
    options.add_argument(
        "--at",
        metavar="TIME",
        help="run not before this time (ISO 8601, UTC unless an offset is given; default: now)",
    )
    options.add_argument(
        "--to-queue",
        metavar="QUEUE",
        help="move the retried jobs to this queue (unlike --queue, which only filters)",
    )
    options.add_argument(
        "--priority", type=int, metavar="P", help="give the retried jobs this priority"
    )


def _add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", help="only jobs of this queue (a filter: --to-queue moves jobs)")
    parser.add_argument("--task", help="only jobs of this task")
    parser.add_argument("--exception-type", help="only jobs whose last error has this type")
    parser.add_argument("--error-contains", help="only jobs whose last error contains this text")
    parser.add_argument("--failed-since", help="only jobs failed at or after (ISO 8601)")
    parser.add_argument("--failed-until", help="only jobs failed before (ISO 8601)")


def job_filter(args: argparse.Namespace) -> FailedJobFilter:
    times = {}
    for name in ("failed_since", "failed_until"):
        raw = getattr(args, name, None)
        times[name] = parse_utc(raw) if raw else None
        if raw and times[name] is None:
            raise CommandError(f"--{name.replace('_', '-')}: not an ISO 8601 time: {raw!r}")
    return FailedJobFilter(
        queue=args.queue,
        task=args.task,
        exception_type=args.exception_type,
        error_contains=args.error_contains,
        **times,
    )


FILTERS = ("queue", "task", "exception_type", "error_contains", "failed_since", "failed_until")


class RetryOptions(TypedDict, total=False):
    """Keyword arguments of the retry functions."""

    at: datetime
    queue: str
    priority: int


def retry_options(args: argparse.Namespace) -> RetryOptions:
    """The retry options given (keyword arguments of the retry functions)."""
    if args.action != "retry":
        return {}
    options: RetryOptions = {}
    if args.at:
        at = parse_utc(args.at)
        if at is None:
            raise CommandError(f"--at: not an ISO 8601 time: {args.at!r}")
        options["at"] = at
    if args.to_queue is not None:
        options["queue"] = args.to_queue
    if args.priority is not None:
        options["priority"] = args.priority
    return options


def run(args: argparse.Namespace) -> int:
    bulk = getattr(args, "all_failed", False)
    try:
        ids = actions.parse_job_ids(args.ids)
    except ActionError as exc:
        raise CommandError(str(exc)) from None
    if bulk and ids:
        raise CommandError("give job ids or --all-failed, not both")
    if not bulk and not ids:
        raise CommandError("give at least one job id (or --all-failed)")
    if not bulk and getattr(args, "queue", None) and args.action == "retry":
        raise CommandError(
            "--queue is a filter and applies only with --all-failed; "
            "to move jobs to another queue use --to-queue"
        )
    if not bulk and any(getattr(args, name, None) for name in FILTERS):
        raise CommandError("filters apply only with --all-failed")
    options = retry_options(args)
    actor = cli_identity()
    with command_connection(args) as conn:
        if bulk:
            result = _run_bulk(conn, args, actor, options)
        elif args.action == "retry":
            result = actions.retry_jobs(conn, ids, actor, **options)
        else:
            func = {"delete": actions.delete_jobs, "restore": actions.restore_jobs}[args.action]
            result = func(conn, ids, actor)
    return report(result)


def _run_bulk(
    conn: psycopg.Connection, args: argparse.Namespace, actor: Identity, options: RetryOptions
) -> actions.ActionResult:
    def progress(result: actions.ActionResult) -> None:
        print(
            f"  … {result.processed:,} of {result.total or 0:,} processed",
            file=sys.stderr,
            flush=True,
        )

    if args.action == "retry":
        return actions.retry_all_matching(
            conn, job_filter(args), actor, progress=progress, **options
        )
    return actions.delete_all_matching(conn, job_filter(args), actor, progress=progress)


def run_export(args: argparse.Namespace) -> int:
    with connect(database_url(args)) as conn:
        return write_export(export_failed_jobs_rows(conn, job_filter(args)), args)


def write_export(rows: Iterable[FailedExportRow], args: argparse.Namespace) -> int:
    if args.output:
        target = Path(args.output)
        # Written beside the target, then renamed: a failed export leaves no partial file.
        try:
            with tempfile.NamedTemporaryFile(
                "w",
                encoding="utf-8",
                newline="",
                dir=target.parent,
                prefix=".jobdash-export-",
                delete=False,
            ) as out:
                tmp = Path(out.name)
                try:
                    count = write_csv(EXPORT_FAILED_HEADER, rows, out)
                except BaseException:
                    out.close()
                    tmp.unlink(missing_ok=True)
                    raise
            os.replace(tmp, target)
        except OSError as exc:
            raise CommandError(f"cannot write {args.output}: {exc.strerror}") from None
        print(f"wrote {count:,} failed jobs to {args.output}", file=sys.stderr)
    else:
        cast(io.TextIOWrapper, sys.stdout).reconfigure(newline="")
        write_csv(EXPORT_FAILED_HEADER, rows, sys.stdout)
    return 0
