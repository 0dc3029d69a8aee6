"""Read queries of the failed-jobs management page: filtered keyset listing, counts, batches of
ids for bulk actions, CSV export rows, job detail, recently deleted, audit log.

All SQL of these reads is here; every value goes in as a parameter. A job's failure time is
the event of its last move into `failed` ('failed' from doing, 'cancelled' from todo), found
through the partial indexes of migrations/003_actions.sql.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from jobdash.app.read.args import patterns, redact_args, redact_args_text
from jobdash.app.rules.redact import redact_rows
from jobdash.core.errors import FilterError

PAGE_SIZES = (50, 100, 500)
MAX_FILTER_CHARS = 500
PREVIEW_CHARS = 300

# The filter, over aliases j (job), f (its latest failure event: at) and err (latest error).
FILTER_CONDITIONS = """
  AND (%(queue)s::text IS NULL OR j.queue_name = %(queue)s)
  AND (%(task)s::text IS NULL OR j.task_name = %(task)s)
  AND (%(exception_type)s::text IS NULL OR err.exception_type = %(exception_type)s)
  AND (%(error_pattern)s::text IS NULL
       OR err.message ILIKE %(error_pattern)s OR err.exception_type ILIKE %(error_pattern)s)
  AND (%(failed_since)s::timestamptz IS NULL OR f.at >= %(failed_since)s)
  AND (%(failed_until)s::timestamptz IS NULL OR f.at < %(failed_until)s)
"""

LATEST_ERROR = """
LEFT JOIN LATERAL (
    SELECT e.exception_type, e.message FROM jobdash_job_errors e
    WHERE e.job_id = j.id ORDER BY e.attempt DESC, e.id DESC LIMIT 1
) err ON true
"""

# Failed jobs newest failure first, walking the failure-event index; a job whose failure
# event is not its latest one (failed, retried, failed again) is listed once, at the latest.
FAILED_FROM_EVENTS = (
    """
FROM procrastinate_events f
JOIN procrastinate_jobs j ON j.id = f.job_id AND j.status = 'failed'
"""
    + LATEST_ERROR
    + """
WHERE f.type IN ('failed', 'cancelled')
  AND NOT EXISTS (
      SELECT 1 FROM procrastinate_events later
      WHERE later.job_id = f.job_id AND later.type IN ('failed', 'cancelled') AND later.id > f.id
  )
"""
    + FILTER_CONDITIONS
)

LIST_FAILED_JOBS = (
    """
SELECT j.id, j.queue_name, j.task_name, err.exception_type,
       left(err.message, %(preview)s) AS message, left(j.args::text, %(preview)s) AS args,
       j.attempts, j.priority, j.lock, f.at AS failed_at, f.id AS failure_event_id
"""
    + FAILED_FROM_EVENTS
    + """
  AND (%(before_at)s::timestamptz IS NULL OR (f.at, f.id) < (%(before_at)s, %(before_event_id)s))
ORDER BY f.at DESC, f.id DESC
LIMIT %(limit)s
"""
)

COUNT_FAILED_JOBS = "SELECT count(*) " + FAILED_FROM_EVENTS

EXPORT_FAILED_JOBS = (
    """
SELECT j.id, j.queue_name, j.task_name, j.priority, j.lock, j.attempts, f.at AS failed_at,
       err.exception_type, err.message, j.args::text AS args
"""
    + FAILED_FROM_EVENTS
    + "ORDER BY f.at DESC, f.id DESC"
)
EXPORT_FAILED_HEADER = [
    "id",
    "queue",
    "task",
    "priority",
    "lock",
    "attempts",
    "failed_at",
    "exception_type",
    "error_message",
    "args",
]

# Bulk actions walk failed jobs in id order (the partial index), up to the largest id seen
# when the run started, so a run always ends.
FAILED_IDS_BATCH = (
    """
SELECT j.id
FROM procrastinate_jobs j
JOIN LATERAL (
    SELECT fe.at FROM procrastinate_events fe
    WHERE fe.job_id = j.id AND fe.type IN ('failed', 'cancelled')
    ORDER BY fe.id DESC LIMIT 1
) f ON true
"""
    + LATEST_ERROR
    + """
WHERE j.status = 'failed' AND j.id > %(after_id)s AND j.id <= %(max_id)s
"""
    + FILTER_CONDITIONS
    + """
ORDER BY j.id
LIMIT %(limit)s
"""
)

MAX_FAILED_ID = "SELECT coalesce(max(id), 0) FROM procrastinate_jobs WHERE status = 'failed'"

FAILED_QUEUES_AND_TASKS = """
SELECT queue_name, task_name, count(*) AS failed
FROM procrastinate_jobs WHERE status = 'failed'
GROUP BY queue_name, task_name ORDER BY queue_name, task_name
"""

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

LIST_DELETED_JOBS = """
SELECT job_id, queue_name, task_name, status, deleted_at, deleted_by,
       jsonb_array_length(errors) AS errors, left((job -> 'args')::text, %(preview)s) AS args,
       id AS archive_id
FROM jobdash_deleted_jobs
WHERE restored_at IS NULL
  AND (%(queue)s::text IS NULL OR queue_name = %(queue)s)
  AND (%(task)s::text IS NULL OR task_name = %(task)s)
  AND (%(before_at)s::timestamptz IS NULL OR (deleted_at, id) < (%(before_at)s, %(before_id)s))
ORDER BY deleted_at DESC, id DESC
LIMIT %(limit)s
"""
DELETED_HEADER = ["job_id", "queue", "task", "status", "deleted_at", "deleted_by", "errors", "args"]


@dataclass(frozen=True)
class FailedJobFilter:
    """What the operator filters the failed jobs by; lives in the page's URL."""

    queue: str | None = None
    task: str | None = None
    error_contains: str | None = None
    exception_type: str | None = None
    failed_since: datetime | None = None
    failed_until: datetime | None = None

    def params(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "task": self.task,
            "exception_type": self.exception_type,
            "error_pattern": like_pattern(self.error_contains) if self.error_contains else None,
            "failed_since": self.failed_since,
            "failed_until": self.failed_until,
        }

    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def to_query_params(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == "":
                continue
            out[f.name] = (
                value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value
            )
        return out

    def describe(self) -> dict[str, str]:
        """The filter for the audit log (JSON-ready)."""
        return self.to_query_params()

    @classmethod
    def from_query_params(
        cls, params: Mapping[str, str], *, only_filter_keys: bool = False
    ) -> FailedJobFilter:
        """A filter from URL parameters (or the CLI's options). A value that cannot be used
        raises FilterError naming it: a bad value never widens the result to every job.
        `only_filter_keys`: an unknown parameter (a typo) is an error too."""
        names = {f.name for f in fields(cls)}
        if only_filter_keys:
            unknown = sorted(set(params) - names)
            if unknown:
                raise FilterError(f"unknown filter {unknown[0]!r}; use {', '.join(sorted(names))}")
        text = {name: filter_text(name, params.get(name)) for name in names}
        return cls(
            queue=text["queue"],
            task=text["task"],
            error_contains=text["error_contains"],
            exception_type=text["exception_type"],
            failed_since=filter_time("failed_since", text["failed_since"], end_of_day=False),
            failed_until=filter_time("failed_until", text["failed_until"], end_of_day=True),
        )


def filter_text(name: str, raw: object) -> str | None:
    """A filter's text: stripped, None when empty; FilterError when PostgreSQL could not take
    it (NUL) or it is absurdly long."""
    if raw is None:
        return None
    value = str(raw).strip()
    if "\x00" in value:
        raise FilterError(f"{name}: contains a NUL character")
    if len(value) > MAX_FILTER_CHARS:
        raise FilterError(f"{name}: longer than {MAX_FILTER_CHARS} characters")
    return value or None


def filter_time(name: str, value: str | None, *, end_of_day: bool) -> datetime | None:
    """An ISO 8601 time (UTC unless it says otherwise). A date alone means the whole day:
    from its start for a lower bound, up to the next day's start for an upper bound."""
    if value is None:
        return None
    parsed = parse_utc(value)
    if parsed is None:
        raise FilterError(f"{name}: not an ISO 8601 date or time: {value[:40]!r}")
    if end_of_day and len(value.strip()) == len("2024-05-01"):
        parsed += timedelta(days=1)
    return parsed


def like_pattern(text: str) -> str:
    """`%text%` for ILIKE with the wildcards in `text` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def parse_utc(value: object) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class PageCursor:
    """Where the next ("older") page starts: the last row's failure time and event id."""

    failed_at: datetime
    event_id: int


@dataclass(frozen=True)
class FailedPage:
    rows: list[dict[str, Any]]
    next_cursor: PageCursor | None
    total: int | None = None  # how many match the filter (load_failed_page)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def list_failed_jobs(
    conn: psycopg.Connection,
    job_filter: FailedJobFilter,
    limit: int = 50,
    before: PageCursor | None = None,
) -> FailedPage:
    params = job_filter.params() | {
        "preview": PREVIEW_CHARS,
        "before_at": before.failed_at if before else None,
        "before_event_id": before.event_id if before else None,
        "limit": limit + 1,  # one more tells whether an older page exists
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(LIST_FAILED_JOBS, params).fetchall()
    for row in rows:
        row["failed_at"] = _utc(row["failed_at"])
        row["args"] = redact_args_text(row["args"])
    has_more = len(rows) > limit
    rows = rows[:limit]
    cursor = PageCursor(rows[-1]["failed_at"], rows[-1]["failure_event_id"]) if has_more else None
    return FailedPage(rows, cursor)


def load_failed_page(
    conn: psycopg.Connection,
    job_filter: FailedJobFilter,
    limit: int = 50,
    before: PageCursor | None = None,
) -> FailedPage:
    """One page of the failed-jobs list with the number of jobs matching the filter."""
    page = list_failed_jobs(conn, job_filter, limit, before)
    return FailedPage(page.rows, page.next_cursor, count_failed_jobs(conn, job_filter))


def count_failed_jobs(conn: psycopg.Connection, job_filter: FailedJobFilter) -> int:
    return int(conn.execute(COUNT_FAILED_JOBS, job_filter.params()).fetchone()[0])


def max_failed_id(conn: psycopg.Connection) -> int:
    return int(conn.execute(MAX_FAILED_ID).fetchone()[0])


def failed_ids_batch(
    conn: psycopg.Connection, job_filter: FailedJobFilter, after_id: int, max_id: int, limit: int
) -> list[int]:
    params = job_filter.params() | {"after_id": after_id, "max_id": max_id, "limit": limit}
    return [row[0] for row in conn.execute(FAILED_IDS_BATCH, params).fetchall()]


def failed_queues_and_tasks(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    return [tuple(row) for row in conn.execute(FAILED_QUEUES_AND_TASKS).fetchall()]


def iter_server_side(
    conn: psycopg.Connection, query: str, params: Mapping[str, Any], chunk_rows: int = 2000
) -> Iterator[tuple]:
    """Rows of `query` from a server-side cursor on `conn`, fetched `chunk_rows` at a time.

    The cursor lives in a transaction of its own; closing the iterator early ends it.
    """
    with conn.transaction(), conn.cursor(name="jobdash_export") as cur:
        cur.itersize = chunk_rows
        cur.execute(query, params)
        yield from cur


def export_failed_jobs_rows(
    conn: psycopg.Connection, job_filter: FailedJobFilter, chunk_rows: int = 2000
) -> Iterator[tuple]:
    rows = iter_server_side(conn, EXPORT_FAILED_JOBS, job_filter.params(), chunk_rows)
    return redact_rows(rows, EXPORT_FAILED_HEADER.index("args"), patterns())


@dataclass
class JobDetail:
    job: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    deleted_at: datetime | None = None  # set when the job is only in the archive
    deleted_by: str | None = None


def load_job_detail(conn: psycopg.Connection, job_id: int) -> JobDetail | None:
    """The job with its events and errors; from the archive when it was deleted; None if unknown."""
    params = {"id": job_id}
    with conn.cursor(row_factory=dict_row) as cur:
        job = cur.execute(JOB, params).fetchone()
        if job is not None:
            events = cur.execute(JOB_EVENTS, params).fetchall()
            errors = cur.execute(JOB_ERRORS, params).fetchall()
            detail = JobDetail(job, events, errors)
        else:
            archived = cur.execute(LIVE_ARCHIVE_OF_JOB, params).fetchone()
            if archived is None:
                return None
            detail = JobDetail(
                archived["job"],
                sorted(archived["events"], key=lambda e: (e["at"] or "", e["id"])),
                sorted(archived["errors"], key=lambda e: (e["attempt"], e["id"])),
                deleted_at=_utc(archived["deleted_at"]),
                deleted_by=archived["deleted_by"],
            )
            for event in detail.events:
                event["at"] = parse_utc(event.get("at"))
            for error in detail.errors:
                error["recorded_at"] = parse_utc(error.get("recorded_at"))
            detail.job["scheduled_at"] = parse_utc(detail.job.get("scheduled_at"))
    detail.job["args"] = redact_args(detail.job.get("args"))
    for event in detail.events:
        event["at"] = _utc(event["at"])
    for error in detail.errors:
        error["recorded_at"] = _utc(error["recorded_at"])
    number_attempts(detail)
    return detail


def number_attempts(detail: JobDetail) -> None:
    """Each error's `number`: the run it ended, counted from the job's `started` events, as
    the operator counts them (Procrastinate's `attempts` also grows on a manual retry, so the
    recorded attempt goes 1, 2, 3, 5)."""
    starts = sorted(e["at"] for e in detail.events if e["type"] == "started" and e["at"])
    for position, error in enumerate(detail.errors, start=1):
        ran_before = bisect.bisect_right(starts, error["recorded_at"]) if starts else 0
        error["number"] = ran_before or position


def args_as_json_text(args: Any) -> str:
    return json.dumps(args, indent=2, ensure_ascii=False, sort_keys=True)


def list_deleted_jobs(
    conn: psycopg.Connection,
    queue: str | None = None,
    task: str | None = None,
    limit: int = 100,
    before: tuple[datetime, int] | None = None,
) -> list[dict[str, Any]]:
    params = {
        "queue": queue,
        "task": task,
        "preview": PREVIEW_CHARS,
        "before_at": before[0] if before else None,
        "before_id": before[1] if before else None,
        "limit": limit,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(LIST_DELETED_JOBS, params).fetchall()
    for row in rows:
        row["deleted_at"] = _utc(row["deleted_at"])
        row["args"] = redact_args_text(row["args"])
    return rows
