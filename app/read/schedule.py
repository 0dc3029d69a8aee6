"""The scheduler's read model: periodic definitions with their last run, and one-time jobs.

The database is read once (`load_schedule_state`); what is due and what runs next is worked out
from that state for a given "now" (`scheduler_at`), so the panel computes it when it is drawn:
its "next execution" is never in the past however old the data. Jobdash's own periodic tasks
(`jobdash:…`) are kept apart from the team's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import psycopg

from jobdash.app.read import dashboard_sql as sql
from jobdash.app.read.models import Scheduler, UpcomingTask
from jobdash.app.rules import schedules
from jobdash.app.rules.text import relative_time
from jobdash.core.periodic import PeriodicDefinition
from jobdash.core.rows import fetch_all, typed_cursor, utc

logger = logging.getLogger(__name__)

# Tasks Jobdash adds to the team's App (its maintenance blueprint's namespace).
JOBDASH_TASK_PREFIX = "jobdash:"


@dataclass(frozen=True)
class PeriodicState:
    definition: PeriodicDefinition
    last_run: datetime | None
    disabled_at: datetime | None = None  # disabled by an operator (jobdash periodic disable)
    disabled_by: str | None = None


@dataclass(frozen=True)
class OnetimeJob:
    id: int
    task: str
    queue: str
    scheduled_at: datetime


@dataclass(frozen=True)
class ScheduleState:
    read_at: datetime  # the database's now() when it was read
    periodic: list[PeriodicState] = field(default_factory=list)
    onetime: list[OnetimeJob] = field(default_factory=list)  # the earliest ones
    onetime_total: int = 0
    onetime_due: int = 0  # at read time
    onetime_next_at: datetime | None = None  # the earliest future one, at read time
    onetime_capped: bool = False  # counted among the oldest sql.OPEN_JOBS_CAP open jobs only


def is_jobdash_task(task_name: str) -> bool:
    return task_name.startswith(JOBDASH_TASK_PREFIX)


class _PeriodicRow(NamedTuple):
    task_name: str
    periodic_id: str
    cron: str
    queue_name: str
    first_published_at: datetime
    last_run: datetime | None
    disabled_at: datetime | None
    disabled_by: str | None


class _OnetimeRow(NamedTuple):
    now: datetime
    total: int
    due: int
    next_at: datetime | None
    capped: bool
    ids: list[int]
    tasks: list[str]
    queues: list[str]
    scheduled_at: list[datetime]


class _DeferRow(NamedTuple):
    task_name: str
    periodic_id: str
    last_run: datetime


# Sort keys as functions: mypy infers a lambda's parameter as Any in sorted().
def _definition_key(state: PeriodicState) -> tuple[str, str]:
    return state.definition.key


def _run_order(task: UpcomingTask) -> tuple[datetime, str]:
    return (task.next_run, task.id)


def load_schedule_state(
    conn: psycopg.Connection,
    *,
    extra_periodic: list[PeriodicDefinition] | None = None,
    limit: int = 10,
) -> ScheduleState:
    """One round trip for the definitions and the one-time jobs (one read of the open jobs);
    a second one only for definitions taken from an App (their last runs)."""
    onetime_params = {
        "cap": sql.OPEN_JOBS_CAP,
        "grace_s": schedules.ONETIME_GRACE_S,
        "limit": limit,
    }
    with conn.pipeline():
        periodic_cur = typed_cursor(conn, _PeriodicRow).execute(sql.PERIODIC_TASKS)
        onetime_cur = typed_cursor(conn, _OnetimeRow).execute(sql.ONETIME, onetime_params)
    periodic = [
        PeriodicState(
            PeriodicDefinition(
                task_name=task, periodic_id=periodic_id, cron=cron, queue=queue, known_since=since
            ),
            utc(last_run),
            utc(disabled_at),
            disabled_by,
        )
        for task, periodic_id, cron, queue, since, last_run, disabled_at, disabled_by in (
            periodic_cur.fetchall()
        )
    ]
    found = onetime_cur.fetchone()
    assert found is not None
    onetime = [
        OnetimeJob(job_id, task, queue, utc(at))
        for job_id, task, queue, at in zip(
            found.ids, found.tasks, found.queues, found.scheduled_at, strict=True
        )
    ]
    periodic += _app_periodic(conn, periodic, extra_periodic or [])
    return ScheduleState(
        read_at=utc(found.now),
        periodic=sorted(periodic, key=_definition_key),
        onetime=onetime,
        onetime_total=found.total,
        onetime_due=found.due,
        onetime_next_at=utc(found.next_at),
        onetime_capped=found.capped,
    )


def _app_periodic(
    conn: psycopg.Connection, published: list[PeriodicState], extra: list[PeriodicDefinition]
) -> list[PeriodicState]:
    """Definitions of an App named by JOBDASH_APP that no worker published, with last runs."""
    known = {p.definition.key for p in published}
    missing = [d for d in extra if d.key not in known]
    if not missing:
        return []
    rows = fetch_all(
        conn, _DeferRow, sql.PERIODIC_DEFERS, {"task_names": sorted({d.task_name for d in missing})}
    )
    last_runs = {(task, pid): utc(at) for task, pid, at in rows}
    return [PeriodicState(d, last_runs.get(d.key)) for d in missing]


def _label(definition: PeriodicDefinition) -> str:
    if definition.periodic_id:
        return f"{definition.task_name}[{definition.periodic_id}]"
    return definition.task_name


def periodic_task_at(state: PeriodicState, now: datetime) -> UpcomingTask | None:
    """The task as of `now`: due (a missed tick, listed at that tick) or its next run. A
    disabled task is never due (its ticks are skipped on purpose)."""
    definition = state.definition
    if not schedules.is_valid_cron(definition.cron):
        logger.warning("periodic task %s: invalid cron %r", _label(definition), definition.cron)
        return None
    tick = schedules.latest_tick(definition.cron, now)
    due = state.disabled_at is None and schedules.is_periodic_due(
        tick, state.last_run, now, known_since=definition.known_since
    )
    next_run = tick if due else schedules.next_tick(definition.cron, now)
    return UpcomingTask(
        id=_label(definition),
        task=definition.task_name,
        schedule_type=schedules.schedule_type(definition.cron),
        schedule=definition.cron,
        schedule_description=schedules.describe_schedule(definition.cron),
        next_run=utc(next_run),
        next_run_relative=relative_time(next_run, now),
        is_due=due,
        last_run=state.last_run,
        queue=definition.queue,
        skipped_if_late=due and schedules.is_skipped_when_late(tick, now),
        disabled_at=state.disabled_at,
        disabled_by=state.disabled_by,
    )


def onetime_task_at(job: OnetimeJob, now: datetime, read_at: datetime) -> UpcomingTask:
    """The job as of `now`; late only if it was waiting past its time when read at `read_at`."""
    return UpcomingTask(
        id=str(job.id),
        task=job.task,
        schedule_type="onetime",
        schedule=None,
        schedule_description=schedules.describe_schedule(None),
        next_run=job.scheduled_at,
        next_run_relative=relative_time(job.scheduled_at, now),
        is_due=schedules.is_onetime_due(job.scheduled_at, read_at),
        last_run=None,
        queue=job.queue,
    )


def scheduler_at(state: ScheduleState, now: datetime, limit: int = 10) -> Scheduler:
    """What is due and what runs next as of `now` (the snapshot passes the database's now,
    the panel the time it is drawn)."""
    periodic = [t for s in state.periodic if (t := periodic_task_at(s, now)) is not None]
    ours = [t for t in periodic if is_jobdash_task(t.task)]
    theirs = [t for t in periodic if not is_jobdash_task(t.task)]
    # Late is judged at the read: a job whose time came since is most likely taken already.
    onetime = [onetime_task_at(job, now, state.read_at) for job in state.onetime]
    future = [t.next_run for t in theirs if t.next_run > now]
    future += [job.scheduled_at for job in state.onetime if job.scheduled_at > now]
    if state.onetime_next_at and state.onetime_next_at > now:
        future.append(state.onetime_next_at)
    team_definitions = [s for s in state.periodic if not is_jobdash_task(s.definition.task_name)]
    return Scheduler(
        total_scheduled_tasks=len(team_definitions) + state.onetime_total,
        due_tasks=sum(t.is_due for t in theirs) + state.onetime_due,
        next_execution=min(future) if future else None,
        upcoming=sorted(theirs + onetime, key=_run_order)[:limit],
        periodic=theirs,
        maintenance=ours,
        onetime_capped=state.onetime_capped,
    )


def load_scheduler(
    conn: psycopg.Connection,
    *,
    extra_periodic: list[PeriodicDefinition] | None = None,
    limit: int = 10,
) -> Scheduler:
    state = load_schedule_state(conn, extra_periodic=extra_periodic, limit=limit)
    return scheduler_at(state, state.read_at, limit)
