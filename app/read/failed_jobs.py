"""Read queries of the failed-jobs management page: filtered keyset listing, counts, batches of
ids for bulk actions, CSV export rows, recently deleted (a job's detail: app/read/job_detail.py).

All SQL of these reads is here; every value goes in as a parameter. The failed jobs and their
failure times (the last move into `failed`) come from jobdash_failed_jobs, kept by the
ledger's triggers (migrations/008_failed_jobs.sql), joined with procrastinate_jobs on the id
and status = 'failed'.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import Field, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple, TypedDict, cast

import psycopg

from jobdash.app.read.args import patterns, redact_args_text
from jobdash.app.rules.redact import redact_json_text
from jobdash.core.errors import FilterError
from jobdash.core.rows import fetch_all, fetch_one, fetch_optional, iter_server_side, utc

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

PAGE_SIZES = (50, 100, 500)
MAX_FILTER_CHARS = 500
PREVIEW_CHARS = 300
# Failed jobs an error filter's page searches at most (JOBDASH_SEARCH_SCAN_FAILED_JOBS).
DEFAULT_SCAN = 20_000
# Failed jobs an error filter's count looks at, at most: exact up to there, past it an
# estimate from the share of matches among the newest (a sample this size is within about a
# percent; reading the whole search window would cost the page ten times more).
COUNT_SAMPLE = 10_000

# The filter, over aliases f (the job's row in jobdash_failed_jobs) and err (latest error).
# Only the conditions of the filter's set fields go into the statement (`with_filter`): no
# `%(x)s IS NULL OR ...` left for a generic plan (psycopg prepares a statement run 5 times)
# to be unable to use an index with.
LIST_CONDITION_SQL = {
    "queue": "f.queue_name = %(queue)s",
    "task": "f.task_name = %(task)s",
    "failed_since": "f.failed_at >= %(failed_since)s",
    "failed_until": "f.failed_at < %(failed_until)s",
}
ERROR_CONDITION_SQL = {
    "exception_type": "err.exception_type = %(exception_type)s",
    "error_pattern": "(err.message ILIKE %(error_pattern)s"
    " OR err.exception_type ILIKE %(error_pattern)s)",
}
LIST_CONDITIONS = "{list_conditions}"
ERROR_CONDITIONS = "{error_conditions}"
FILTER_CONDITIONS = LIST_CONDITIONS + ERROR_CONDITIONS
# The next page starts after the last row shown.
KEYSET = "{keyset}"
KEYSET_SQL = "\n  AND (f.failed_at, f.job_id) < (%(before_at)s, %(before_id)s)"


def with_filter(query: str, params: Mapping[str, object]) -> str:
    """`query` with the conditions of the parameters that are set (and the keyset condition
    when a page cursor is)."""

    def conditions(sql: Mapping[str, str]) -> str:
        return "".join(
            f"\n  AND {text}" for name, text in sql.items() if params.get(name) is not None
        )

    keyset = KEYSET_SQL if params.get("before_at") is not None else ""
    return (
        query.replace(LIST_CONDITIONS, conditions(LIST_CONDITION_SQL))
        .replace(ERROR_CONDITIONS, conditions(ERROR_CONDITION_SQL))
        .replace(KEYSET, keyset)
    )


# The latest error of the listed job f.
LATEST_ERROR = """
LEFT JOIN LATERAL (
    SELECT e.exception_type, e.message FROM jobdash_job_errors e
    WHERE e.job_id = f.job_id ORDER BY e.attempt DESC, e.id DESC LIMIT 1
) err ON true
"""
# The listed job f's row in procrastinate_jobs, while it is failed: a row the list still has
# for a job no longer failed never shows. The LIMIT keeps the check a primary-key probe per
# listed row (a plain join lets the planner hash or merge the whole jobs table against the
# list).
STILL_FAILED = """
JOIN LATERAL (
    SELECT * FROM procrastinate_jobs pj WHERE pj.id = f.job_id AND pj.status = 'failed' LIMIT 1
) j ON true
"""
# Failed jobs from our list (migrations/008_failed_jobs.sql), each checked against
# procrastinate_jobs.
LISTED_JOB = "\nFROM jobdash_failed_jobs f" + STILL_FAILED
FAILED_FROM_LIST = (
    LISTED_JOB
    + LATEST_ERROR
    + """
WHERE true
"""
    + FILTER_CONDITIONS
)

# A row of the list (FailedListRow).
LIST_COLUMNS = """
SELECT j.id, j.queue_name, j.task_name, err.exception_type,
       left(err.message, %(preview)s) AS message, left(j.args::text, %(preview)s) AS args,
       j.attempts, j.priority, j.lock, f.failed_at
"""
# Newest failure first: the (failed_at, job_id) index, or the queue's or task's.
NEWEST_FIRST = "\nORDER BY f.failed_at DESC, f.job_id DESC\n"
LIST_FAILED_JOBS = LIST_COLUMNS + FAILED_FROM_LIST + KEYSET + NEWEST_FIRST + "LIMIT %(limit)s"

# With an error filter no index finds the matches: the newest `scan` listed jobs matching the
# queue, task and time filters are the candidates (a subquery, so its order reaches the outer
# LIMIT and a page that fills stops early), each checked against its latest error first, then
# against procrastinate_jobs. A page that does not fill says how far it searched.
ERROR_SEARCH_CANDIDATES = (
    "SELECT f.* FROM jobdash_failed_jobs f WHERE true"
    + LIST_CONDITIONS
    + KEYSET
    + NEWEST_FIRST
    + "LIMIT %(scan)s"
)
# The candidates' latest errors first (the error conditions), then the jobs' rows.
SEARCH_FAILED_JOBS = (
    LIST_COLUMNS
    + "FROM ("
    + ERROR_SEARCH_CANDIDATES
    + ") f"
    + LATEST_ERROR
    + STILL_FAILED
    + "WHERE true"
    + ERROR_CONDITIONS
    + NEWEST_FIRST
    + "LIMIT %(limit)s"
)
# How far the search went: the candidates, the last (oldest) of them, and whether an older
# listed job matches the queue, task and time filters (a next page to search).
SEARCH_EXTENT = (
    """
SELECT c.n, c.failed_at, c.job_id, EXISTS (
    SELECT 1 FROM jobdash_failed_jobs f
    WHERE (f.failed_at, f.job_id) < (c.failed_at, c.job_id)"""
    + LIST_CONDITIONS
    + """
)
FROM (
    SELECT count(*) OVER () AS n, c.failed_at, c.job_id FROM ("""
    + ERROR_SEARCH_CANDIDATES
    + """) c
    ORDER BY c.failed_at, c.job_id LIMIT 1
) c
"""
)
# Matches among the candidates (of the whole list when they are fewer than `scan`).
SEARCH_COUNT = (
    """
SELECT count(*) FILTER (WHERE m.hit AND EXISTS (
           SELECT 1 FROM procrastinate_jobs pj WHERE pj.id = m.job_id AND pj.status = 'failed'
       )), count(*)
FROM (
    SELECT f.job_id, true"""
    + ERROR_CONDITIONS
    + " AS hit FROM ("
    + ERROR_SEARCH_CANDIDATES
    + ") f"
    + LATEST_ERROR
    + ") m"
)

COUNT_FAILED_JOBS = "SELECT count(*) " + FAILED_FROM_LIST
# Without an error filter the latest error is not needed to count.
COUNT_FAILED_JOBS_NO_ERROR_FILTER = (
    "SELECT count(*) " + LISTED_JOB + "WHERE true " + LIST_CONDITIONS
)

COUNT_FROM_LEDGER = (
    "SELECT coalesce(sum(delta), 0)::bigint FROM jobdash_failed_counts f WHERE true"
    + LIST_CONDITIONS
)

EXPORT_FAILED_JOBS = (
    """
SELECT j.id, j.queue_name, j.task_name, j.priority, j.lock, j.attempts, f.failed_at,
       err.exception_type, err.message, j.args::text AS args
"""
    + FAILED_FROM_LIST
    + NEWEST_FIRST
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

# Bulk actions walk failed jobs in id order (the list's primary key), up to the largest id
# listed when the run started, so a run always ends. The next `limit` listed ids matching the
# queue, task and time filters are taken first (MATERIALIZED: the planner, which expects few
# listed rows to be failed jobs, would otherwise probe the whole range and sort it), then
# each is checked against the jobs table and the error filters; the last row says how far
# the walk went, so an error filter matching few of them goes on from there.
FAILED_IDS_BATCH = (
    """
WITH listed AS MATERIALIZED (
    SELECT f.* FROM jobdash_failed_jobs f
    WHERE f.job_id > %(after_id)s AND f.job_id <= %(max_id)s"""
    + LIST_CONDITIONS
    + """
    ORDER BY f.job_id
    LIMIT %(limit)s
)
SELECT f.job_id, j.id IS NOT NULL """
    + ERROR_CONDITIONS
    + """
FROM listed f
LEFT JOIN LATERAL (
    SELECT * FROM procrastinate_jobs pj WHERE pj.id = f.job_id AND pj.status = 'failed' LIMIT 1
) j ON true
"""
    + LATEST_ERROR
    + """
ORDER BY f.job_id
"""
)

MAX_FAILED_ID = "SELECT coalesce(max(job_id), 0) FROM jobdash_failed_jobs"

# The failed-count ledger (a few rows per queue and task), exact as the list.
FAILED_QUEUES_AND_TASKS = """
SELECT queue_name, task_name, sum(delta)::bigint AS failed
FROM jobdash_failed_counts
GROUP BY queue_name, task_name HAVING sum(delta) > 0 ORDER BY queue_name, task_name
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

    def params(self) -> dict[str, object]:
        return {
            "queue": self.queue,
            "task": self.task,
            "exception_type": self.exception_type,
            "error_pattern": like_pattern(self.error_contains) if self.error_contains else None,
            "failed_since": self.failed_since,
            "failed_until": self.failed_until,
        }

    def is_empty(self) -> bool:
        return not any(value for _, value in filter_values(self))

    def filters_by_error(self) -> bool:
        return bool(self.exception_type or self.error_contains)

    def filters_by_time(self) -> bool:
        return self.failed_since is not None or self.failed_until is not None

    def to_query_params(self) -> dict[str, str]:
        return query_params((n, v) for n, v in filter_values(self) if v not in (None, ""))

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
        text = filter_texts(cls, params, only_filter_keys=only_filter_keys)
        return cls(
            queue=text["queue"],
            task=text["task"],
            error_contains=text["error_contains"],
            exception_type=text["exception_type"],
            failed_since=filter_time("failed_since", text["failed_since"], end_of_day=False),
            failed_until=filter_time("failed_until", text["failed_until"], end_of_day=True),
        )


def filter_values(chosen: DataclassInstance) -> list[tuple[str, object]]:
    """(name, value) of every field of a filter (this page's or the Jobs page's), in order (to
    mypy, fields() and getattr() give Any)."""
    names = [f.name for f in cast("tuple[Field[object], ...]", fields(chosen))]
    return [(name, cast(object, getattr(chosen, name))) for name in names]


def query_params(values: Iterable[tuple[str, object]]) -> dict[str, str]:
    """A filter's (name, value) pairs as URL parameters: times in UTC ISO 8601, tuples (job
    ids) comma-separated, the rest as text."""
    out: dict[str, str] = {}
    for name, value in values:
        if isinstance(value, datetime):
            out[name] = value.astimezone(UTC).isoformat()
        elif isinstance(value, tuple):
            out[name] = ",".join(str(v) for v in cast("tuple[object, ...]", value))
        else:
            out[name] = str(value)
    return out


def filter_texts(
    kind: type[DataclassInstance], params: Mapping[str, str], *, only_filter_keys: bool
) -> dict[str, str | None]:
    """Each field of the filter class `kind`, its filter_text from URL parameters (or the CLI's
    options); `only_filter_keys`: an unknown parameter (a typo) is a FilterError."""
    names = {f.name for f in cast("tuple[Field[object], ...]", fields(kind))}
    if only_filter_keys:
        unknown = sorted(set(params) - names)
        if unknown:
            raise FilterError(f"unknown filter {unknown[0]!r}; use {', '.join(sorted(names))}")
    return {name: filter_text(name, params.get(name)) for name in names}


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
    """Where the next ("older") page starts: the last row's failure time and job id."""

    failed_at: datetime
    job_id: int


class FailedListRow(TypedDict):
    """A row of the failed-jobs list (the message and args cut to PREVIEW_CHARS, args
    redacted)."""

    id: int
    queue_name: str
    task_name: str
    exception_type: str | None
    message: str | None
    args: str | None
    attempts: int
    priority: int
    lock: str | None
    failed_at: datetime


def _list_row(
    job_id: int,
    queue_name: str,
    task_name: str,
    exception_type: str | None,
    message: str | None,
    args: str | None,
    attempts: int,
    priority: int,
    lock: str | None,
    failed_at: datetime,
) -> FailedListRow:
    return FailedListRow(
        id=job_id,
        queue_name=queue_name,
        task_name=task_name,
        exception_type=exception_type,
        message=message,
        args=redact_args_text(args),
        attempts=attempts,
        priority=priority,
        lock=lock,
        failed_at=utc(failed_at),
    )


@dataclass(frozen=True)
class FailedCount:
    """How many failed jobs match: exact, or (an error filter over more failed jobs than one
    search looks at) `matched` among the newest `searched`, with the `estimate` of the whole
    that this share gives (≈)."""

    matched: int
    exact: bool = True
    searched: int | None = None
    estimate: int | None = None

    @property
    def number(self) -> int:
        """The number to show on an action: exact, else the estimate."""
        return self.matched if self.exact or self.estimate is None else self.estimate

    def text(self, filtered: bool) -> str:
        """ "12 failed jobs match the filter", or "≈ 2,300 failed jobs match the filter (from
        the newest 100,000: 23 match)"."""
        what = " the filter" if filtered else ""
        if self.exact:
            return f"{self.matched:,} failed jobs match{what}"
        newest = f"{self.matched:,} of the newest {self.searched or 0:,} failed jobs match"
        if not self.matched:
            return f"No match among the newest {self.searched or 0:,} failed jobs"
        if self.estimate is None:
            return newest
        return f"≈ {self.estimate:,} failed jobs match{what} (estimated: {newest})"


@dataclass(frozen=True)
class FailedPage:
    rows: list[FailedListRow]
    next_cursor: PageCursor | None
    count: FailedCount | None = None  # how many match the filter (load_failed_page)
    # An error filter's page that did not fill: how many failed jobs it searched (at most
    # `scan`); "Older »" searches on from the last of them.
    searched: int | None = None
    scan: int | None = None


def _page_params(
    job_filter: FailedJobFilter, limit: int, before: PageCursor | None, scan: int
) -> dict[str, object]:
    return job_filter.params() | {
        "preview": PREVIEW_CHARS,
        "before_at": before.failed_at if before else None,
        "before_id": before.job_id if before else None,
        "limit": limit + 1,  # one more tells whether an older page exists
        "scan": scan,
    }


def list_failed_jobs(
    conn: psycopg.Connection,
    job_filter: FailedJobFilter,
    limit: int = 50,
    before: PageCursor | None = None,
    scan: int = DEFAULT_SCAN,
) -> FailedPage:
    """One page, newest failure first, older than `before`. With an error filter at most
    `scan` failed jobs are searched per page (see SEARCH_FAILED_JOBS)."""
    params = _page_params(job_filter, limit, before, scan)
    searching = job_filter.filters_by_error()
    query = SEARCH_FAILED_JOBS if searching else LIST_FAILED_JOBS
    rows = fetch_all(conn, _list_row, with_filter(query, params), params)
    if len(rows) > limit:
        last = rows[limit - 1]
        return FailedPage(rows[:limit], PageCursor(last["failed_at"], last["id"]))
    if not searching:
        return FailedPage(rows, None)
    extent = fetch_optional(conn, _Extent, with_filter(SEARCH_EXTENT, params), params)
    if extent is None or not extent.older:
        return FailedPage(rows, None)  # the search reached the oldest failed job
    cursor = PageCursor(utc(extent.failed_at), extent.job_id)
    return FailedPage(rows, cursor, searched=extent.searched, scan=scan)


class _Extent(NamedTuple):
    searched: int
    failed_at: datetime
    job_id: int
    older: bool


class _SearchCount(NamedTuple):
    matched: int
    searched: int


class _Total(NamedTuple):
    value: int


def load_failed_page(
    conn: psycopg.Connection,
    job_filter: FailedJobFilter,
    limit: int = 50,
    before: PageCursor | None = None,
    scan: int = DEFAULT_SCAN,
) -> FailedPage:
    """One page of the failed-jobs list with the number of jobs matching the filter. The first
    page of an error search that did not fill has read what its count needs."""
    page = list_failed_jobs(conn, job_filter, limit, before, scan)
    if before is None and job_filter.filters_by_error() and page.next_cursor is None:
        count = FailedCount(len(page.rows))  # it searched every failed job of the filter
    elif before is None and page.searched is not None:
        count = _estimated(conn, job_filter, len(page.rows), page.searched)
    else:
        count = count_failed_page(conn, job_filter, scan)
    if count.estimate is not None and count.estimate < len(page.rows):
        # A rare match the page found past the count's sample: at least what is shown.
        count = dataclasses.replace(count, estimate=len(page.rows))
    return FailedPage(page.rows, page.next_cursor, count, page.searched, page.scan)


def count_failed_page(
    conn: psycopg.Connection, job_filter: FailedJobFilter, scan: int = DEFAULT_SCAN
) -> FailedCount:
    """The page's count: exact (count_failed_jobs) unless an error filter would have to look
    at more than COUNT_SAMPLE (or `scan`) failed jobs; then the matches among the newest of
    them with the estimate they give (_estimated)."""
    if not job_filter.filters_by_error():
        return FailedCount(count_failed_jobs(conn, job_filter))
    sample = min(scan, COUNT_SAMPLE)
    params = job_filter.params() | {"scan": sample, "before_at": None}
    found = fetch_one(conn, _SearchCount, with_filter(SEARCH_COUNT, params), params)
    if found.searched < sample:
        return FailedCount(found.matched)
    return _estimated(conn, job_filter, found.matched, found.searched)


def _estimated(
    conn: psycopg.Connection, job_filter: FailedJobFilter, matched: int, searched: int
) -> FailedCount:
    """`matched` among the newest `searched` and, without a time filter, the estimate their
    share gives of all the failed jobs of the queue and task (the ledger's exact number)."""
    estimate = None
    if not job_filter.filters_by_time():
        params = job_filter.params()
        listed = fetch_one(conn, _Total, with_filter(COUNT_FROM_LEDGER, params), params).value
        estimate = max(matched, round(listed * matched / searched))
    return FailedCount(matched, False, searched, estimate)


def count_failed_jobs(conn: psycopg.Connection, job_filter: FailedJobFilter) -> int:
    """Exact. Filtered by queue and task only (or not at all): the failed-count ledger, a few
    rows whatever the number of failed jobs. By time or error: the list, one probe per job."""
    params = job_filter.params()
    if job_filter.filters_by_error():
        query = COUNT_FAILED_JOBS
    elif job_filter.filters_by_time():
        query = COUNT_FAILED_JOBS_NO_ERROR_FILTER
    else:
        query = COUNT_FROM_LEDGER
    return fetch_one(conn, _Total, with_filter(query, params), params).value


class _Listed(NamedTuple):
    """A row of FAILED_IDS_BATCH: a listed job, and whether it is failed and matches the
    error filters (NULL: it has no recorded error to match)."""

    job_id: int
    matches: bool | None


def max_failed_id(conn: psycopg.Connection) -> int:
    return fetch_one(conn, _Total, MAX_FAILED_ID).value


def failed_ids_batch(
    conn: psycopg.Connection, job_filter: FailedJobFilter, after_id: int, max_id: int, limit: int
) -> list[int]:
    """Up to `limit` ids of failed jobs matching the filter, after `after_id`, up to
    `max_id`, in id order: `limit` listed jobs looked at per query."""
    ids: list[int] = []
    while len(ids) < limit:
        params = job_filter.params() | {"after_id": after_id, "max_id": max_id, "limit": limit}
        rows = fetch_all(conn, _Listed, with_filter(FAILED_IDS_BATCH, params), params)
        ids += [job_id for job_id, matches in rows if matches][: limit - len(ids)]
        if len(rows) < limit:
            break
        after_id = rows[-1].job_id
    return ids


def _queue_and_task(queue_name: str, task_name: str, failed: int) -> tuple[str, str, int]:
    """A row of FAILED_QUEUES_AND_TASKS."""
    return (queue_name, task_name, failed)


def failed_queues_and_tasks(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    return fetch_all(conn, _queue_and_task, FAILED_QUEUES_AND_TASKS)


class FailedExportRow(NamedTuple):
    """A row of EXPORT_FAILED_JOBS, in EXPORT_FAILED_HEADER's order; `args` the whole JSON text
    (redacted by export_failed_jobs_rows)."""

    id: int
    queue_name: str
    task_name: str
    priority: int
    lock: str | None
    attempts: int
    failed_at: datetime
    exception_type: str | None
    message: str | None
    args: str | None


def export_failed_jobs_rows(
    conn: psycopg.Connection, job_filter: FailedJobFilter, chunk_rows: int = 2000
) -> Generator[FailedExportRow, None, None]:
    """Every failed job matching the filter, newest failure first, from a server-side cursor
    (a transaction of its own, see iter_server_side): close the generator to end it early."""
    params = job_filter.params()
    rows = iter_server_side(
        conn, FailedExportRow, with_filter(EXPORT_FAILED_JOBS, params), params, chunk_rows
    )
    return _redacted_export(rows, patterns())


def _redacted_export(
    rows: Generator[FailedExportRow, None, None], hidden: Sequence[str]
) -> Generator[FailedExportRow, None, None]:
    """The rows with their args redacted (the patterns read once per export)."""
    with closing(rows):
        for row in rows:
            args = None if row.args is None else redact_json_text(row.args, hidden)
            yield row._replace(args=args)


class DeletedJobRow(TypedDict):
    """A row of LIST_DELETED_JOBS: `deleted_at` in UTC, `errors` the number recorded, `args`
    cut to PREVIEW_CHARS and redacted."""

    job_id: int
    queue_name: str
    task_name: str
    status: str
    deleted_at: datetime
    deleted_by: str
    errors: int
    args: str | None
    archive_id: int


def _deleted_row(
    job_id: int,
    queue_name: str,
    task_name: str,
    status: str,
    deleted_at: datetime,
    deleted_by: str,
    errors: int,
    args: str | None,
    archive_id: int,
) -> DeletedJobRow:
    return DeletedJobRow(
        job_id=job_id,
        queue_name=queue_name,
        task_name=task_name,
        status=status,
        deleted_at=utc(deleted_at),
        deleted_by=deleted_by,
        errors=errors,
        args=redact_args_text(args),
        archive_id=archive_id,
    )


def list_deleted_jobs(
    conn: psycopg.Connection,
    queue: str | None = None,
    task: str | None = None,
    limit: int = 100,
    before: tuple[datetime, int] | None = None,
) -> list[DeletedJobRow]:
    params = {
        "queue": queue,
        "task": task,
        "preview": PREVIEW_CHARS,
        "before_at": before[0] if before else None,
        "before_id": before[1] if before else None,
        "limit": limit,
    }
    return fetch_all(conn, _deleted_row, LIST_DELETED_JOBS, params)
