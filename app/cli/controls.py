"""`jobdash pause QUEUE`, `jobdash resume QUEUE`, `jobdash periodic run|disable|enable TASK`
(actor: the OS user; audited)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import psycopg

from jobdash.app.actions import controls
from jobdash.app.cli.common import (
    add_command,
    add_database_argument,
    cli_identity,
    command_connection,
)
from jobdash.core.auth.identity import Identity

EXIT_STATUS = """exit status:
  0  done
  1  nothing to do: already paused / not paused / already disabled / not disabled, or the
     periodic task's queueing lock is held (the line says by which job)
  2  error: bad input, an unknown periodic task, read-only mode, the database unreachable"""

HONOURED = (
    "Honoured by instrumented workers (jobdash worker, run_instrumented_worker) from their next "
    "poll; workers that are not instrumented cannot honour it."
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, help_text in (
        ("pause", "pause a queue: instrumented workers take none of its jobs (running finish)"),
        ("resume", "resume a paused queue"),
    ):
        parser = add_command(
            subparsers, name, run_queue, database_first=False,
            help=help_text, description=f"{help_text.capitalize()}. {HONOURED}",
            epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        parser.add_argument("queue", metavar="QUEUE")
        add_database_argument(parser)
        parser.set_defaults(action=name)

    periodic = add_command(
        subparsers,
        "periodic",
        run_periodic,
        database_first=False,
        help="run a periodic task now, or disable / enable it",
        description="run: defer it now with its configured kwargs (marked manual in the audit "
        "log). disable: instrumented workers defer none of its ticks (and do not make them up "
        "when enabled again). TASK is the task name, or TASK[PERIODIC_ID] for a task scheduled "
        f"more than once. {HONOURED}",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    periodic.add_argument("what", choices=["run", "disable", "enable"])
    periodic.add_argument("task", metavar="TASK")
    add_database_argument(periodic)


def _run(
    act: Callable[[psycopg.Connection, Identity], controls.ControlResult], args: argparse.Namespace
) -> int:
    with command_connection(args) as conn:
        result = act(conn, cli_identity())
    print(result.summary())
    return 0 if result.done else 1


def run_queue(args: argparse.Namespace) -> int:
    func = controls.pause_queue if args.action == "pause" else controls.resume_queue
    return _run(lambda conn, actor: func(conn, args.queue, actor), args)


def run_periodic(args: argparse.Namespace) -> int:
    func = {
        "run": controls.run_periodic_now,
        "disable": controls.disable_periodic,
        "enable": controls.enable_periodic,
    }[args.what]
    return _run(lambda conn, actor: func(conn, args.task, actor), args)
