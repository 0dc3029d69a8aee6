"""`jobdash migrate`."""

from __future__ import annotations

import argparse

from jobdash.app.cli.common import add_database_argument, database_url
from jobdash.core.errors import CommandError, MigrationError
from jobdash.core.migrate import migrate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="create or upgrade the database schema",
        description="Apply Procrastinate's schema when absent, then Jobdash's migrations. "
        "Safe to run again and from several processes at once.",
    )
    add_database_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        report = migrate(database_url(args))
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    if report.procrastinate_schema_applied:
        print("applied Procrastinate's schema")
    for name in report.applied:
        print(f"applied {name}")
    if not report.procrastinate_schema_applied and not report.applied:
        print("database is up to date")
    return 0
