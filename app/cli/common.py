"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import getpass

from jobdash.app.actions.jobs import ActionResult
from jobdash.core.auth.identity import Identity, Role
from jobdash.core.database import check_connection, resolve_database_url
from jobdash.core.settings import load_settings


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL (default: $JOBDASH_DATABASE_URL, then $DATABASE_URL, "
        "else the embedded server in ./.jobdash)",
    )


def database_url(args: argparse.Namespace) -> str:
    """The URL to use, after checking that the database answers (one-line error if not)."""
    url = getattr(args, "database_url", None)
    if not url:
        url = resolve_database_url(load_settings())
    check_connection(url)
    return url


def cli_identity() -> Identity:
    """Who acts from the command line: the OS user, with every role (whoever can run the CLI
    against the database can change it anyway; the audit log names them)."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):
        name = "cli"
    return Identity(name, Role.ADMIN, "cli")


# Argument types: a bad value is one line from argparse, never a traceback.
def parse_queues(text: str) -> list[str]:
    queues = [q.strip() for q in text.split(",") if q.strip()]
    if not queues:
        raise argparse.ArgumentTypeError("give at least one queue name")
    return queues


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def report(result: ActionResult) -> int:
    """Prints what an action did and each job it skipped (the first 50) and why; the exit
    status: 0 all done, 1 some skipped or stopped."""
    print(result.summary())
    for job_id, reason in sorted(result.skipped.items())[:50]:
        print(f"  skipped {job_id}: {reason}")
    if result.skipped_count > 50:
        print(f"  … and {result.skipped_count - 50:,} more skipped")
    return 1 if result.skipped or result.stopped else 0
