"""`jobdash snapshot`: the four panels' data once, as JSON or as readable text."""

from __future__ import annotations

import argparse
import json

from jobdash.app.cli.common import add_command, database_url
from jobdash.app.read.dashboard import load_snapshot
from jobdash.app.read.models import Snapshot, to_jsonable
from jobdash.core.app_loader import load_app
from jobdash.core.database import connect
from jobdash.core.errors import CommandError, describe_error
from jobdash.core.periodic import PeriodicDefinition, periodic_definitions
from jobdash.core.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "snapshot",
        run,
        help="print the dashboard's data once (queue stats, workers, failed jobs, scheduler)",
        description="Print what the dashboard shows, from the same loaders: one JSON object "
        "with --json (keys generated_at, queue_stats, worker_health, failed_jobs, scheduler), "
        "else a readable summary.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--app",
        help="dotted.path:app of a Procrastinate App whose periodic tasks to include "
        "(default: $JOBDASH_APP)",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="queue statistics window in seconds (default 3600)",
    )


def _app_periodic(app_path: str) -> list[PeriodicDefinition]:
    try:
        return periodic_definitions(load_app(app_path))
    except Exception as exc:  # importing a team's module can raise anything
        raise CommandError(f"cannot load --app {app_path}: {describe_error(exc)}") from None


def run(args: argparse.Namespace) -> int:
    if args.window <= 0:
        raise CommandError("--window must be a positive number of seconds")
    settings = load_settings()
    app_path = args.app or settings.app_path
    extra = _app_periodic(app_path) if app_path else None
    url = database_url(args)
    with connect(url, statement_timeout_ms=settings.statement_timeout_ms) as conn:
        snapshot = load_snapshot(
            conn,
            window_seconds=args.window,
            healthy_heartbeat_s=settings.heartbeat_healthy_s,
            extra_periodic=extra,
        )
    if args.json:
        print(json.dumps(to_jsonable(snapshot), ensure_ascii=False))
    else:
        print(format_text(snapshot))
    return 0


def _num(value: float | None, suffix: str = "", digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def format_text(s: Snapshot) -> str:
    """A plain-text summary (job data printed as text, one line per item)."""
    q, w, f, sch = s.queue_stats, s.worker_health, s.failed_jobs, s.scheduler
    lines = [
        f"Jobdash snapshot at {s.generated_at.isoformat()}",
        "",
        f"Queue statistics (last {q.window_seconds} s)",
        f"  ready now {q.current_queue_size} · succeeded {q.successful_jobs} · "
        f"failed {q.failed_jobs} · total {q.total_jobs} · success rate "
        f"{_num(q.success_rate, ' %')} · avg execution {_num(q.avg_execution_time_ms, ' ms', 0)}",
    ]
    for row in q.queues:
        lines.append(
            f"  {row.name!r}: ready {row.ready}, scheduled {row.scheduled}, doing {row.doing}, "
            f"failed {row.failed}, oldest ready {_num(row.oldest_ready_age_s, ' s', 0)}"
        )
    lines += [
        "",
        f"Worker health: {w.active_workers}/{w.total_workers} healthy · "
        f"{w.jobs_in_progress} in progress · {w.stalled_jobs} stalled",
    ]
    for wr in w.workers:
        host = f"{wr.hostname}:{wr.pid}" if wr.hostname else "(not instrumented)"
        lines.append(
            f"  #{wr.worker_id} {host} {'healthy' if wr.healthy else 'UNHEALTHY'} · "
            f"jobs {wr.jobs}/{wr.max_jobs if wr.max_jobs is not None else '?'} · "
            f"cpu {_num(wr.cpu_percent, ' %')} · mem {_num(wr.memory_mb, ' MB', 0)} · "
            f"heartbeat {wr.heartbeat_age_s:.0f} s ago"
        )
    lines += ["", f"Failed jobs: {f.total_failed_jobs}"]
    for job in f.jobs[:10]:
        when = job.failed_at.isoformat() if job.failed_at else "?"
        lines.append(
            f"  #{job.id} {job.task!r} on {job.queue!r} at {when} "
            f"(attempts {job.attempts}): {job.error!r}"
        )
    lines += [
        "",
        f"Scheduler: {sch.total_scheduled_tasks} scheduled · {sch.due_tasks} due · next "
        f"{sch.next_execution.isoformat() if sch.next_execution else '—'}",
    ]
    for t in sch.upcoming:
        mark = "DUE " if t.is_due else ""
        lines.append(
            f"  {mark}{t.task!r} [{t.schedule_type}: {t.schedule_description}] "
            f"{t.next_run_relative}"
        )
    return "\n".join(lines)
