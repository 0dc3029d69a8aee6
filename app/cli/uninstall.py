"""`jobdash uninstall`: remove every jobdash_* object, leaving Procrastinate's schema as it was."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from jobdash.app.cli.common import add_command, database_url
from jobdash.core.database import connect, describe
from jobdash.core.errors import CommandError, MigrationError
from jobdash.core.schema.uninstall import find_objects, uninstall

DESCRIPTION = """\
Remove everything Jobdash added to the database — every object named jobdash_*, found in
the catalog: its triggers and indexes on Procrastinate's tables, then its own tables (with
their data: recorded errors, history, audit log, archived deleted jobs), sequences,
functions, procedures and types. Procrastinate's own schema and jobs stay exactly as
Procrastinate made them.
Live workers are not blocked for long: triggers are dropped one per short transaction that
waits at most JOBDASH_MIGRATE_LOCK_TIMEOUT_MS for its lock (then retries), indexes with DROP
INDEX CONCURRENTLY. An interrupted uninstall is completed by running it again.
Asks for confirmation on a terminal; --yes for scripts (required when stdin is not a terminal).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "uninstall",
        run,
        help="remove every jobdash_* object from the database (asks first; --yes for scripts)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _count(n: int, kind: str) -> str:
    plural = {"index": "indexes", "routine": "functions and procedures"}.get(kind, kind + "s")
    singular = {"routine": "function or procedure"}.get(kind, kind)
    return f"{n} {singular if n == 1 else plural}"


def run(args: argparse.Namespace) -> int:
    url = database_url(args)
    with connect(url, application_name="jobdash-uninstall") as conn:
        found = find_objects(conn)
    if not found:
        print(f"nothing to remove: {describe(url)} has no Jobdash objects")
        return 0
    counts = Counter(r.kind for r in found)
    summary = ", ".join(_count(n, kind) for kind, n in counts.items())
    print(f"This removes from {describe(url)}: {summary} (data in Jobdash's tables is lost).")
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("stdin is not a terminal: pass --yes to confirm the removal")
        answer = input("Remove them? [y/N] ").strip().lower()
        if answer not in {"y", "yes"}:
            print("nothing removed")
            return 1
    try:
        removed = uninstall(url, notify=lambda line: print(line, flush=True))
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    print(f"removed {len(removed)} Jobdash objects; Procrastinate's schema is as it was")
    return 0
