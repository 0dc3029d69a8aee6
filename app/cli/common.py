"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import textwrap
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg

from jobdash.app.actions.jobs import ActionResult
from jobdash.core.auth.identity import Identity, Role
from jobdash.core.database import check_connection, connect, resolve_database_url
from jobdash.core.errors import ActionError, CommandError, describe_error
from jobdash.core.settings import load_settings

Number = TypeVar("Number", int, float)

# What the dashboard binds unless told otherwise (serve, demo).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501


def add_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    run: Callable[[argparse.Namespace], int],
    *,
    database_first: bool = True,
    **parser_options: Any,
) -> argparse.ArgumentParser:
    """The parser of a subcommand that `run`s on a database, with --database-url as its first
    option; with database_first=False the caller adds it (add_database_argument) where the
    command's help has always listed it."""
    parser = subparsers.add_parser(name, **parser_options)
    if database_first:
        add_database_argument(parser)
    parser.set_defaults(func=run)
    return parser


def add_raw_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    run: Callable[[argparse.Namespace], int],
    *,
    help: str,
    description: str,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """`add_command` in argparse's raw layout, so that the epilog (an exit-status table) keeps
    its line breaks: the description is wrapped here, at 88 columns. The caller adds
    --database-url after the command's own options."""
    return add_command(
        subparsers,
        name,
        run,
        database_first=False,
        help=help,
        description=textwrap.fill(description, 88),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL (default: $JOBDASH_DATABASE_URL, then $DATABASE_URL, "
        "else the embedded server in ./.jobdash)",
    )


def add_listen_arguments(
    parser: argparse.ArgumentParser, *, host_help: str, port_help: str
) -> None:
    """--host and --port of the dashboard, each help text ending with its default."""
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"{host_help} (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"{port_help} (default {DEFAULT_PORT})"
    )


def database_url(args: argparse.Namespace) -> str:
    """The URL to use, after checking that the database answers (one-line error if not)."""
    url = getattr(args, "database_url", None)
    if not url:
        url = resolve_database_url(load_settings())
    check_connection(url)
    return url


@contextlib.contextmanager
def command_connection(
    args: argparse.Namespace, **connect_options: Any
) -> Iterator[psycopg.Connection]:
    """A connection to the command's database (`database_url`) for its reads and actions: a
    refused action or a failing statement becomes the command's one-line error (exit status 2),
    never a traceback."""
    url = database_url(args)
    try:
        with connect(url, **connect_options) as conn:
            yield conn
    except ActionError as exc:
        raise CommandError(str(exc)) from None
    except psycopg.Error as exc:
        raise CommandError(describe_error(exc)) from None


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


def _number(convert: Callable[[str], Number], text: str, kind: str) -> Number:
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None


def positive_int(text: str) -> int:
    value = _number(int, text, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(float, text, "a number")
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
