"""`jobdash migrate [--plan | --check]`."""

from __future__ import annotations

import argparse

from jobdash.app.cli.common import add_command, database_url
from jobdash.core.database import connect
from jobdash.core.errors import CommandError, MigrationError
from jobdash.core.schema import migrate, pending_migrations
from jobdash.core.schema.plan import BACKFILL_MB_S, INDEX_BUILD_MB_S, SCAN_MB_S, plan
from jobdash.core.schema.runner import pending
from jobdash.core.settings import load_settings

DESCRIPTION = """\
Apply Procrastinate's schema when the database has none (one transaction, on an empty
database), then Jobdash's pending migrations, step by step, safe to run while workers and
deferrers are live:
  - indexes on Procrastinate's tables are built CONCURRENTLY (writers continue); an index an
    interrupted run left invalid is dropped and built again;
  - each trigger or other DDL on Procrastinate's tables runs in its own short transaction
    that waits at most JOBDASH_MIGRATE_LOCK_TIMEOUT_MS (default 200 ms) for its lock, then
    gives way to the queue and retries with backoff (one line per retry: what it waits for);
  - backfills run after the DDL, in short transactions.
A migration is recorded once all its steps are done; a run that was interrupted or failed is
completed by the next one. Concurrent runs are serialised.
"""

EPILOG = f"""\
--plan prints, for each pending step: what it does, the table of Procrastinate's it touches,
the lock it takes there and what that means for the queue, and an estimate of its duration:
the table's size (pg_relation_size) divided by the rate bench/bench_migrate.py measured on 2
shared cores (index builds {INDEX_BUILD_MB_S:.0f} MB/s, one-statement reads {SCAN_MB_S:.0f} MB/s,
batched backfills {BACKFILL_MB_S:.0f} MB/s); rows are pg_class.reltuples. An index build also
waits for the transactions already running when it starts.

--check exits 1 and lists what is pending, 0 when the database is up to date (for deploy
pipelines: `jobdash migrate --check || jobdash migrate`).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "migrate",
        run,
        help="create or upgrade the database schema (--plan: show what it would do; "
        "--check: exit 1 when something is pending)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--plan",
        action="store_true",
        help="print each pending step, its lock and estimate; change nothing",
    )
    mode.add_argument(
        "--check", action="store_true", help="exit 1 listing what is pending, 0 when up to date"
    )


def run(args: argparse.Namespace) -> int:
    url = database_url(args)
    if args.plan:
        return print_plan(url)
    if args.check:
        return check(url)
    try:
        report = migrate(url, notify=lambda line: print(line, flush=True))
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    if report.procrastinate_schema_applied:
        print("applied Procrastinate's schema")
    for name in report.applied:
        print(f"applied {name}")
    if not report.procrastinate_schema_applied and not report.applied:
        print("database is up to date")
    return 0


def check(url: str) -> int:
    names = pending_migrations(url)
    if not names:
        print("database is up to date")
        return 0
    print(f"pending: {', '.join(names)}")
    return 1


def print_plan(url: str) -> int:
    timeout_ms = load_settings().migrate_lock_timeout_ms
    with connect(url, application_name="jobdash-migrate") as conn:
        procrastinate_missing, _ = pending(conn)
        steps = plan(conn, timeout_ms)
    if not procrastinate_missing and not steps:
        print("database is up to date: nothing to do")
        return 0
    print("jobdash migrate would (nothing has been changed):")
    if procrastinate_missing:
        print("procrastinate schema")
        print("  apply Procrastinate's schema in one transaction (the database has none)")
    for name, planned in steps:
        print(name)
        for step in planned:
            print("\n".join(step.lines()))
    print(
        f"Lock waits: at most {timeout_ms} ms per attempt (JOBDASH_MIGRATE_LOCK_TIMEOUT_MS), "
        "then the queue goes first and the step retries. Estimates: see --help."
    )
    return 0
