"""The `jobdash` command. Each subcommand lives in its own module under `app/commands/`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

from jobdash.core.errors import JobdashError
from jobdash.core.logs import configure_logging

# Each module defines `register(subparsers)`, which adds its parser(s) with `func=run`.
COMMAND_MODULES = [
    "jobdash.app.cli.migrate",
    "jobdash.app.cli.uninstall",
    "jobdash.app.cli.serve",
    "jobdash.app.cli.worker",
    "jobdash.app.cli.demo",
    "jobdash.app.cli.snapshot",
    "jobdash.app.cli.actions",
    "jobdash.app.cli.jobs",
    "jobdash.app.cli.controls",
    "jobdash.app.cli.history",
    "jobdash.app.cli.seed",
    "jobdash.app.cli.user",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobdash",
        description="Live operations dashboard for Procrastinate job queues.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # Turn SIGTERM into a normal exit so atexit hooks (embedded server release) run.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Libraries' INFO lines (the embedded server's "already running", ...) only with
    # --verbose; a command that wants its own progress logged says so (the worker does).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        configure_logging(logging.DEBUG if args.verbose else logging.WARNING)
        return int(args.func(args) or 0)
    except JobdashError as exc:
        print(f"jobdash {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
