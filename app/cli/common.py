"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import getpass

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
