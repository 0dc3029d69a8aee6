"""`jobdash user add NAME --role ROLE [--password-stdin]`: the line for JOBDASH_USERS(_FILE).

Prints exactly one line, `NAME:ROLE:HASH`; the password never appears anywhere else.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from jobdash.core.auth.identity import Role
from jobdash.core.auth.passwords import hash_password
from jobdash.core.auth.users import name_problem
from jobdash.core.errors import CommandError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "user",
        help="built-in sign-in users",
        description="Manage built-in sign-in users (for teams without an identity provider).",
    )
    commands = parser.add_subparsers(dest="user_command", metavar="SUBCOMMAND", required=True)
    add = commands.add_parser(
        "add",
        help="print the NAME:ROLE:HASH line for a new user",
        description="Print one line NAME:ROLE:HASH (scrypt hash of the password) to add to "
        "JOBDASH_USERS or the JOBDASH_USERS_FILE. Asks for the password twice, or reads it "
        "from standard input with --password-stdin.",
    )
    add.add_argument("name", metavar="NAME", help="user name (no ':', ';' or spaces)")
    add.add_argument(
        "--role", required=True, choices=[role.value for role in Role], help="the user's role"
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (one line) instead of asking",
    )
    add.set_defaults(func=run_add)


def _password_from_stdin() -> str:
    text = sys.stdin.readline()
    return text.removesuffix("\n").removesuffix("\r")


def _password_from_prompt() -> str:
    if not sys.stdin.isatty():
        raise CommandError("standard input is not a terminal: use --password-stdin")
    first = getpass.getpass("Password: ")
    if not first:
        raise CommandError("the password is empty")
    if getpass.getpass("Password again: ") != first:
        raise CommandError("the passwords differ")
    return first


def run_add(args: argparse.Namespace) -> int:
    problem = name_problem(args.name)
    if problem:
        raise CommandError(problem)
    password = _password_from_stdin() if args.password_stdin else _password_from_prompt()
    try:
        encoded = hash_password(password)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(f"{args.name}:{args.role}:{encoded}")
    return 0
