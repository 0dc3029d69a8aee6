"""One job in full, as every job page shows it: its row, events and recorded errors, from the
live tables or, for a deleted job, from its archive (jobdash_deleted_jobs), args redacted.

The rows are TypedDicts (callers read them as `detail.job["args"]`): live rows are built by the
row callables below (core/rows.py), archived ones by checked conversions of the archive's
jsonb, so a value of the wrong type fails here, named, instead of somewhere in a page.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, TypedDict

import psycopg

from jobdash.app.read.args import redact_args
from jobdash.app.read.failed_jobs import parse_utc
from jobdash.core.errors import ArchiveError
from jobdash.core.jsontypes import Json
from jobdash.core.rows import fetch_all, fetch_optional, utc

JOB = """
SELECT id, queue_name, task_name, priority, lock, queueing_lock, args, status::text AS status,
       scheduled_at, attempts, abort_requested, worker_id
FROM procrastinate_jobs WHERE id = %(id)s
"""
JOB_EVENTS = """
SELECT id, type::text AS type, at FROM procrastinate_events WHERE job_id = %(id)s ORDER BY at, id
"""
JOB_ERRORS = """
SELECT attempt, exception_type, message, traceback, worker_id, hostname, pid, will_retry,
       recorded_at
FROM jobdash_job_errors WHERE job_id = %(id)s ORDER BY attempt, id
"""
LIVE_ARCHIVE_OF_JOB = """
SELECT job, events, errors, deleted_at, deleted_by FROM jobdash_deleted_jobs
WHERE job_id = %(id)s AND restored_at IS NULL
"""


class JobRow(TypedDict):
    """The job's row (JOB's columns); `args` redacted."""

    id: int
    queue_name: str
    task_name: str
    priority: int
    lock: str | None
    queueing_lock: str | None
    args: Json
    status: str
    scheduled_at: datetime | None
    attempts: int
    abort_requested: bool
    worker_id: int | None


class EventRow(TypedDict):
    """One of the job's events (JOB_EVENTS' columns), `at` in UTC."""

    id: int
    type: str
    at: datetime | None


class ErrorRow(TypedDict):
    """One recorded error (JOB_ERRORS' columns), `recorded_at` in UTC; `number`: the run it
    ended, as the operator counts them (number_attempts)."""

    attempt: int
    exception_type: str
    message: str
    traceback: str
    worker_id: int | None
    hostname: str | None
    pid: int | None
    will_retry: bool
    recorded_at: datetime | None
    number: int


@dataclass
class JobDetail:
    job: JobRow
    events: list[EventRow] = field(default_factory=list)
    errors: list[ErrorRow] = field(default_factory=list)
    deleted_at: datetime | None = None  # set when the job is only in the archive
    deleted_by: str | None = None


def _job_row(
    id: int,
    queue_name: str,
    task_name: str,
    priority: int,
    lock: str | None,
    queueing_lock: str | None,
    args: Json,
    status: str,
    scheduled_at: datetime | None,
    attempts: int,
    abort_requested: bool,
    worker_id: int | None,
) -> JobRow:
    """A row of JOB (scheduled_at as read: the live row is not converted to UTC)."""
    return JobRow(
        id=id,
        queue_name=queue_name,
        task_name=task_name,
        priority=priority,
        lock=lock,
        queueing_lock=queueing_lock,
        args=args,
        status=status,
        scheduled_at=scheduled_at,
        attempts=attempts,
        abort_requested=abort_requested,
        worker_id=worker_id,
    )


def _event_row(id: int, type: str, at: datetime | None) -> EventRow:
    """A row of JOB_EVENTS."""
    return EventRow(id=id, type=type, at=utc(at))


def _error_row(
    attempt: int,
    exception_type: str,
    message: str,
    traceback: str,
    worker_id: int | None,
    hostname: str | None,
    pid: int | None,
    will_retry: bool,
    recorded_at: datetime | None,
) -> ErrorRow:
    """A row of JOB_ERRORS (`number` is set by number_attempts)."""
    return ErrorRow(
        attempt=attempt,
        exception_type=exception_type,
        message=message,
        traceback=traceback,
        worker_id=worker_id,
        hostname=hostname,
        pid=pid,
        will_retry=will_retry,
        recorded_at=utc(recorded_at),
        number=0,
    )


class _Archive(NamedTuple):
    """A row of LIVE_ARCHIVE_OF_JOB: the job, its events and errors as jsonb of the original
    tables' row types (app/actions/archive.py)."""

    job: Json
    events: Json
    errors: Json
    deleted_at: datetime
    deleted_by: str


def load_job_detail(conn: psycopg.Connection, job_id: int) -> JobDetail | None:
    """The job with its events and errors; from the archive when it was deleted; None if unknown."""
    params = {"id": job_id}
    job = fetch_optional(conn, _job_row, JOB, params)
    if job is not None:
        events = fetch_all(conn, _event_row, JOB_EVENTS, params)
        errors = fetch_all(conn, _error_row, JOB_ERRORS, params)
        detail = JobDetail(job, events, errors)
    else:
        archived = fetch_optional(conn, _Archive, LIVE_ARCHIVE_OF_JOB, params)
        if archived is None:
            return None
        detail = JobDetail(
            _archived_job(archived.job),
            _archived_events(archived.events),
            _archived_errors(archived.errors),
            deleted_at=utc(archived.deleted_at),
            deleted_by=archived.deleted_by,
        )
    detail.job["args"] = redact_args(detail.job["args"])
    number_attempts(detail)
    return detail


def number_attempts(detail: JobDetail) -> None:
    """Each error's `number`: the run it ended, counted from the job's `started` events, as
    the operator counts them (Procrastinate's `attempts` also grows on a manual retry, so the
    recorded attempt goes 1, 2, 3, 5)."""
    starts = sorted(e["at"] for e in detail.events if e["type"] == "started" and e["at"])
    for position, error in enumerate(detail.errors, start=1):
        recorded_at = error["recorded_at"]
        ran_before = (
            bisect.bisect_right(starts, recorded_at) if starts and recorded_at is not None else 0
        )
        error["number"] = ran_before or position


def args_as_json_text(args: Json) -> str:
    return json.dumps(args, indent=2, ensure_ascii=False, sort_keys=True)


# The archive's jsonb, checked: to_jsonb of the row as it was when deleted. A column missing
# from an archive older than it (abort_requested came with Procrastinate 3.0, worker_id with
# 3.1) reads as NULL or the column's default; a value of the wrong type is an ArchiveError.


def _object(value: Json, what: str) -> dict[str, Json]:
    if not isinstance(value, dict):
        raise ArchiveError(f"archived {what}: not a JSON object")
    return value


def _objects(value: Json, what: str) -> list[dict[str, Json]]:
    if not isinstance(value, list):
        raise ArchiveError(f"archived {what}: not a JSON array")
    return [_object(item, what) for item in value]


def _int(row: dict[str, Json], key: str) -> int:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchiveError(f"archived {key}: not a whole number")
    return value


def _optional_int(row: dict[str, Json], key: str) -> int | None:
    return None if row.get(key) is None else _int(row, key)


def _str(row: dict[str, Json], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str):
        raise ArchiveError(f"archived {key}: not a string")
    return value


def _optional_str(row: dict[str, Json], key: str) -> str | None:
    return None if row.get(key) is None else _str(row, key)


def _bool(row: dict[str, Json], key: str) -> bool:
    value = row.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ArchiveError(f"archived {key}: not true or false")
    return value


def _time(row: dict[str, Json], key: str) -> datetime | None:
    """A timestamptz as to_jsonb writes it (ISO 8601), in UTC."""
    return parse_utc(row.get(key))


def _archived_job(value: Json) -> JobRow:
    job = _object(value, "job")
    return JobRow(
        id=_int(job, "id"),
        queue_name=_str(job, "queue_name"),
        task_name=_str(job, "task_name"),
        priority=_int(job, "priority"),
        lock=_optional_str(job, "lock"),
        queueing_lock=_optional_str(job, "queueing_lock"),
        args=job.get("args"),
        status=_str(job, "status"),
        scheduled_at=_time(job, "scheduled_at"),
        attempts=_int(job, "attempts"),
        abort_requested=_bool(job, "abort_requested"),
        worker_id=_optional_int(job, "worker_id"),
    )


def _archived_events(value: Json) -> list[EventRow]:
    """The events in JOB_EVENTS' order (by time as written, then id)."""
    return [_archived_event(e) for e in sorted(_objects(value, "events"), key=_event_order)]


def _event_order(event: dict[str, Json]) -> tuple[str, int]:
    return (_optional_str(event, "at") or "", _int(event, "id"))


def _archived_event(event: dict[str, Json]) -> EventRow:
    return EventRow(id=_int(event, "id"), type=_str(event, "type"), at=_time(event, "at"))


def _archived_errors(value: Json) -> list[ErrorRow]:
    """The errors in JOB_ERRORS' order (attempt, then id)."""
    return [_archived_error(e) for e in sorted(_objects(value, "errors"), key=_error_order)]


def _error_order(error: dict[str, Json]) -> tuple[int, int]:
    return (_int(error, "attempt"), _int(error, "id"))


def _archived_error(error: dict[str, Json]) -> ErrorRow:
    return ErrorRow(
        attempt=_int(error, "attempt"),
        exception_type=_str(error, "exception_type"),
        message=_str(error, "message"),
        traceback=_str(error, "traceback"),
        worker_id=_optional_int(error, "worker_id"),
        hostname=_optional_str(error, "hostname"),
        pid=_optional_int(error, "pid"),
        will_retry=_bool(error, "will_retry"),
        recorded_at=_time(error, "recorded_at"),
        number=0,
    )
