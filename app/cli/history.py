"""`jobdash rollup [--backfill]` and `jobdash history --range 24h [--queue Q] [--task T]`."""

from __future__ import annotations

import argparse
import io
import json
import sys
from typing import Any, cast

from jobdash.app.cli.common import add_command, add_database_argument, database_url
from jobdash.app.read.history import RANGES, history_rows, load_history
from jobdash.app.rules.csv_format import write_csv
from jobdash.core.database import connect
from jobdash.core.errors import CommandError
from jobdash.core.settings import load_settings
from jobdash.jobs.maintenance.rollup import run_rollup
from jobdash.jobs.maintenance.task import maintain

HISTORY_FIELDS = [
    "bucket_start", "queue", "succeeded", "failed", "retried", "p50_ms", "p95_ms",
    "ready", "scheduled", "doing", "latency_s",
]  # fmt: skip


COUNT_FIELDS = {"succeeded", "failed", "retried"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rollup = add_command(
        subparsers,
        "rollup",
        run_rollup_command,
        database_first=False,
        help="fold recent job events into history buckets now",
        description="Recompute the last minutes of history (what the worker does every "
        "minute), apply retention, or with --backfill build history from all existing events "
        "(a day per transaction, one line per day).",
    )
    rollup.add_argument(
        "--backfill", action="store_true", help="recompute from the oldest event still present"
    )
    add_database_argument(rollup)

    history = add_command(
        subparsers,
        "history",
        run_history_command,
        database_first=False,
        help="print throughput history, one row per bucket and queue",
        description="One row per bucket and queue: succeeded, failed, retried, p50/p95 "
        "duration (ms), queue depth and latency (s).",
    )
    history.add_argument("--range", default="24h", help=f"one of {', '.join(RANGES)}")
    history.add_argument("--queue", help="only this queue")
    history.add_argument("--task", help="only this task")
    history.add_argument("--format", choices=["csv", "json"], default="csv")
    add_database_argument(history)


def run_rollup_command(args: argparse.Namespace) -> int:
    url = database_url(args)
    if args.backfill:
        with connect(url) as conn:
            report = run_rollup(
                conn, backfill=True, progress=lambda step: print(step.summary(), flush=True)
            )
    else:
        report = maintain(url)
    if report.skipped:
        print("skipped: another rollup is running; try again in a moment")
        return 0
    print(report.summary())
    return 0


def run_history_command(args: argparse.Namespace) -> int:
    if args.range not in RANGES:
        raise CommandError(f"unknown range {args.range!r}; use one of {', '.join(RANGES)}")
    url = database_url(args)
    with connect(url) as conn:
        data = load_history(
            conn,
            args.range,
            queue=args.queue,
            task=args.task,
            minute_retention_days=load_settings().minute_retention_days,
            per_queue=True,
        )
    rows = [_plain(row) for row in history_rows(data)]
    if not data.status.recording:
        print(
            "jobdash history: warning: history is not being recorded (no rollup in the last "
            "5 minutes)",
            file=sys.stderr,
        )
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=1)
        print()
    else:
        # The one CSV writer: a queue or task name like "=HYPERLINK(…)" is neutralised.
        cast(io.TextIOWrapper, sys.stdout).reconfigure(newline="")
        values = ([row[name] for name in HISTORY_FIELDS] for row in rows)
        write_csv(HISTORY_FIELDS, values, sys.stdout)
    return 0


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in HISTORY_FIELDS:
        value: object = row.get(name)
        if hasattr(value, "isoformat"):
            value = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, float):
            # counts become floats when the outer join with depth leaves gaps
            value = int(value) if name in COUNT_FIELDS else round(value, 3)
        elif hasattr(value, "item"):  # numpy scalar
            value = value.item()
        out[name] = value
    return out
