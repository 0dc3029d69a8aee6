"""The Jobs page's reads: state counts, filtered keyset pages that stay bounded whatever the
table's size, the id batches of "all matching" actions, and rows for the CLI.

How a filtered page stays fast without new indexes on Procrastinate's table: candidates are
walked newest first (id descending) through what an index gives in id order — the primary key,
the open jobs (todo/doing), the failed jobs, a list of ids, a small queue — at most `scan`
(JOBDASH_SEARCH_SCAN_JOBS) of them per page; the other conditions (task, args, time ranges,
priority, finished states, a big queue) are checked on each candidate. A page that fills
stops early; one that does not says how many jobs it searched and "Older »" goes on from
there, instead of running into the statement timeout. Every SQL fragment is a constant here;
every value is a parameter.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple, TypeAlias, TypedDict, cast

import psycopg
from psycopg.types.json import Jsonb

from jobdash.app.read.args import preview_args, redact_args
from jobdash.app.read.failed_jobs import FailedJobFilter, count_failed_jobs
from jobdash.app.read.job_filter import JobFilter
from jobdash.core.jsontypes import Json
from jobdash.core.rows import fetch_all, fetch_one, fetch_optional, utc

OPEN_STATES = ("ready", "scheduled", "doing", "abort_requested")
# A queue with at most this many jobs (any state) is walked through Procrastinate's
# queue_name index; a bigger one is a condition on the newest jobs.
SMALL_QUEUE = 10_000
COUNT_CAP = 10_000
MAX_ARGS_BYTES = 16_384
ARGS_PREVIEW_CHARS = 400

STATE_SQL = {
    # Procrastinate's (id, lock) index of todo/doing jobs: the walk of any open state, the state
    # itself checked on each (a driver of "scheduled" alone would pass over every ready job).
    "open": "j.status IN ('todo', 'doing')",
    "ready": "(j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now()))",
    "scheduled": "(j.status = 'todo' AND j.scheduled_at > now())",
    "doing": "(j.status = 'doing' AND NOT j.abort_requested)",
    "abort_requested": "(j.status = 'doing' AND j.abort_requested)",
    "succeeded": "j.status = 'succeeded'",
    "failed": "j.status = 'failed'",
    "cancelled": "j.status = 'cancelled'",
    "aborted": "j.status = 'aborted'",
}
CONDITION_SQL = {
    "before": "j.id < %(before)s",
    "id_floor": "j.id >= %(id_floor)s",
    "id_ceiling": "j.id < %(id_ceiling)s",
    "ids": "j.id = ANY(%(ids)s::bigint[])",
    "queue": "j.queue_name = %(queue)s",
    "task": "j.task_name = %(task)s",
    "lock": "j.lock = %(lock)s",
    "queueing_lock": "j.queueing_lock = %(queueing_lock)s",
    "worker": "j.worker_id = %(worker)s",
    "priority_min": "j.priority >= %(priority_min)s",
    "priority_max": "j.priority <= %(priority_max)s",
    "args": "j.args @> %(args)s::jsonb",
    "deferred": """EXISTS (
        SELECT 1 FROM procrastinate_events e
        WHERE e.job_id = j.id AND e.type = 'deferred'
          AND e.at >= coalesce(%(deferred_since)s::timestamptz, '-infinity')
          AND e.at < coalesce(%(deferred_until)s::timestamptz, 'infinity'))""",
    "finished": """EXISTS (
        SELECT 1 FROM procrastinate_events e
        WHERE e.job_id = j.id AND e.type IN ('succeeded', 'failed', 'cancelled', 'aborted')
          AND e.at >= coalesce(%(finished_since)s::timestamptz, '-infinity')
          AND e.at < coalesce(%(finished_until)s::timestamptz, 'infinity'))""",
}
STATE_CASE = """CASE
    WHEN j.status = 'todo' AND j.scheduled_at > now() THEN 'scheduled'
    WHEN j.status = 'todo' THEN 'ready'
    WHEN j.status IN ('doing', 'aborting') AND (j.abort_requested OR j.status = 'aborting')
        THEN 'abort_requested'
    ELSE j.status::text END"""

CANDIDATES = """
SELECT * FROM {source} j WHERE {driver} ORDER BY j.id DESC LIMIT %(scan)s
"""
# The failed jobs are walked through our list of them (migrations/008_failed_jobs.sql) in id
# order, each checked against procrastinate_jobs; the id, queue and task are the list's, so
# that conditions on them are checked on the list (`before` and id bounds bound the walk of its
# primary key) before a job's row is read.
FAILED_SOURCE = """(
    SELECT f.job_id AS id, f.queue_name, f.task_name, j.priority, j.lock, j.queueing_lock,
           j.args, j.status, j.scheduled_at, j.attempts, j.abort_requested, j.worker_id
    FROM jobdash_failed_jobs f
    -- LIMIT: one primary-key probe per listed job, never a merge along the whole jobs table.
    JOIN LATERAL (
        SELECT * FROM procrastinate_jobs pj WHERE pj.id = f.job_id AND pj.status = 'failed'
        LIMIT 1
    ) j ON true
)"""
PAGE = (
    """
SELECT p.*,
       (SELECT min(e.at) FROM procrastinate_events e
         WHERE e.job_id = p.id AND e.type = 'deferred') AS deferred_at,
       (SELECT max(e.at) FROM procrastinate_events e
         WHERE e.job_id = p.id AND e.type IN ('succeeded', 'failed', 'cancelled', 'aborted'))
           AS finished_at
FROM (
    SELECT j.id, """
    + STATE_CASE
    + """ AS state, j.status::text AS status, j.queue_name, j.task_name,
           j.priority, j.attempts, j.lock, j.queueing_lock, j.scheduled_at, j.worker_id,
           j.abort_requested,
           -- Big args are not shipped whole: a preview needs only the first characters.
           CASE WHEN pg_column_size(j.args) <= %(max_args_bytes)s THEN j.args END AS args,
           CASE WHEN pg_column_size(j.args) > %(max_args_bytes)s
                THEN left(j.args::text, %(preview_chars)s) END AS args_text
    FROM ("""
    + CANDIDATES
    + """) j
    WHERE {residual}
    ORDER BY j.id DESC
    LIMIT %(limit)s
) p
ORDER BY p.id DESC
"""
)
IDS = "SELECT j.id FROM (" + CANDIDATES + ") j WHERE {residual} ORDER BY j.id DESC LIMIT %(limit)s"
# How far the candidate walk went: how many, down to which id.
EXTENT = "SELECT count(*), min(j.id) FROM (" + CANDIDATES + ") j"
COUNT = "SELECT count(*) FILTER (WHERE {residual}), count(*), min(j.id) FROM (" + CANDIDATES + ") j"
ESTIMATE = "EXPLAIN (FORMAT JSON) SELECT 1 FROM procrastinate_jobs j WHERE {conditions}"
SMALL_QUEUE_SQL = """
SELECT count(*) <= %(small)s FROM (
    SELECT 1 FROM procrastinate_jobs WHERE queue_name = %(queue)s LIMIT %(small)s + 1
) q
"""
MAX_ID = "SELECT coalesce(max(id), 0) FROM procrastinate_jobs"
# The first job (by id) from `id` on and when it was deferred: one probe of Procrastinate's
# events(job_id) index. Ids grow with deferral time, which a binary search turns into id bounds.
DEFERRED_FROM = """
SELECT e.job_id, e.at FROM procrastinate_events e
WHERE e.job_id >= %(id)s AND e.type = 'deferred'
ORDER BY e.job_id LIMIT 1
"""
ID_RANGE = "SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM procrastinate_jobs"
# A job's id is taken when it is inserted, its `deferred` time when its transaction began: a
# job deferred in a transaction open longer than this may fall outside the id bounds.
DEFERRAL_SLACK = timedelta(minutes=5)

# Open jobs per state among the oldest `cap` + 1 (jobdash_open_prefix: Procrastinate's own
# index of todo/doing jobs); the last column says the counts stopped at the cap.
OPEN_COUNTS = """
SELECT count(*) FILTER (WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())),
       count(*) FILTER (WHERE status = 'todo' AND scheduled_at > now()),
       count(*) FILTER (WHERE status = 'doing' AND NOT abort_requested),
       count(*) FILTER (WHERE status = 'doing' AND abort_requested),
       count(*) > %(cap)s
FROM jobdash_open_prefix(%(cap)s + 1)
"""
FAILED_TOTAL = "SELECT coalesce(sum(delta), 0)::bigint FROM jobdash_failed_counts"
ESTIMATED_STATES = ("succeeded", "cancelled", "aborted")


@dataclass(frozen=True)
class SearchPlan:
    """Which conditions pick the candidates (walked in id order through an index, at most
    `scan` of them) and which are checked on each candidate."""

    driver: tuple[str, ...]
    residual: tuple[str, ...]
    walks: str  # the candidates in words: "jobs", "open jobs", "failed jobs", ...
    # Job id bounds from the time filters (see id_bounds): floor inclusive, ceiling exclusive.
    id_floor: int | None = None
    id_ceiling: int | None = None

    def bounds(self) -> dict[str, int | None]:
        return {"id_floor": self.id_floor, "id_ceiling": self.id_ceiling}

    @property
    def bounded_by_index(self) -> bool:
        """Whether the candidates are a set an index bounds (not every job)."""
        return self.walks != "jobs"


def search_plan(job_filter: JobFilter, small_queue: bool = False) -> SearchPlan:
    """Pure: the plan for this filter (`small_queue`: its queue has ≤ SMALL_QUEUE jobs)."""
    f = job_filter
    driver: list[str] = []
    residual: list[str] = []
    walks = "jobs"
    open_state = f.state in OPEN_STATES
    if f.ids:
        driver.append("ids")
        walks = "listed jobs"
    if f.state is not None:
        if open_state:
            driver.append("state:open")
            residual.append(f"state:{f.state}")
            if not f.ids:
                walks = "open jobs"
        elif f.state == "failed":
            driver.append("state:failed")
            if not f.ids:
                walks = "failed jobs"
        else:
            residual.append(f"state:{f.state}")
    # The failed list holds each job's queue and task: walking it, they are checked before
    # the job's row is read (and the ledger counts them).
    on_failed_list = f.state == "failed" and not f.ids
    if f.queue is not None:
        # Procrastinate's queue_name index walks a small queue; a big one is a condition (on
        # the open jobs, or on the newest jobs), so no walk passes over more than `scan` rows.
        if on_failed_list:
            driver.append("queue")
        elif small_queue and not f.ids:
            driver.append("queue")
            if walks == "jobs":
                walks = f"jobs of queue {f.queue}"
        else:
            residual.append("queue")
    # Open jobs' locks are in Procrastinate's indexes ((id, lock) of todo/doing, unique lock
    # of doing, unique queueing lock of todo, worker id of doing); finished jobs' are not.
    for name, states in (
        ("lock", OPEN_STATES),
        ("queueing_lock", ("ready", "scheduled")),
        ("worker", ("doing", "abort_requested")),
    ):
        if cast(object, getattr(f, name)) is not None:  # to mypy, getattr() gives Any
            (driver if f.state in states else residual).append(name)
    if f.task is not None:
        (driver if on_failed_list else residual).append("task")
    for name in ("priority_min", "priority_max", "args"):
        if cast(object, getattr(f, name)) is not None:
            residual.append(name)
    if f.deferred_since or f.deferred_until:
        residual.append("deferred")
    if f.finished_since or f.finished_until:
        residual.append("finished")
    return SearchPlan(tuple(driver), tuple(residual), walks)


def _sql(names: tuple[str, ...] | list[str]) -> str:
    parts = [
        STATE_SQL[name.split(":", 1)[1]] if name.startswith("state:") else CONDITION_SQL[name]
        for name in names
    ]
    return " AND ".join(parts) if parts else "true"


def _params(job_filter: JobFilter) -> dict[str, object]:
    f = job_filter
    return {
        "ids": list(f.ids),
        "queue": f.queue,
        "task": f.task,
        "lock": f.lock,
        "queueing_lock": f.queueing_lock,
        "worker": f.worker,
        "priority_min": f.priority_min,
        "priority_max": f.priority_max,
        "args": Jsonb(f.args_object()) if f.args else None,
        "deferred_since": f.deferred_since,
        "deferred_until": f.deferred_until,
        "finished_since": f.finished_since,
        "finished_until": f.finished_until,
    }


def _source(driver: tuple[str, ...]) -> str:
    return FAILED_SOURCE if "state:failed" in driver else "procrastinate_jobs"


def _extent_sql(driver: tuple[str, ...]) -> str:
    return EXTENT.format(source=_source(driver), driver=_sql(driver))


def _driver(plan: SearchPlan, before: int | None) -> tuple[str, ...]:
    return (*plan.driver, "before") if before is not None else plan.driver


class _IdRange(NamedTuple):
    low: int
    high: int


class _Deferred(NamedTuple):
    job_id: int
    at: datetime


def first_id_deferred_at(conn: psycopg.Connection, at: datetime) -> int:
    """The first job id whose deferral is at or after `at` (max id + 1 when none): a binary
    search over ids, ~25 index probes at 10 M jobs."""
    row = fetch_optional(conn, _IdRange, ID_RANGE)
    low, high = (row.low, row.high + 1) if row else (0, 1)
    while low < high:
        middle = (low + high) // 2
        found = fetch_optional(conn, _Deferred, DEFERRED_FROM, {"id": middle})
        if found is None or found.at >= at:
            high = middle
        else:
            low = found.job_id + 1
    return low


def id_bounds(conn: psycopg.Connection, job_filter: JobFilter) -> tuple[int | None, int | None]:
    """Job id bounds implied by the time filters: jobs deferred since T have ids from the first
    one deferred at T; jobs deferred, or finished, before T have ids below the first one
    deferred at T (a job finishes after it is deferred). Widened by DEFERRAL_SLACK."""
    f = job_filter
    floor = ceiling = None
    if f.deferred_since is not None:
        floor = first_id_deferred_at(conn, f.deferred_since - DEFERRAL_SLACK)
    untils = [t for t in (f.deferred_until, f.finished_until) if t is not None]
    if untils:
        ceiling = first_id_deferred_at(conn, min(untils) + DEFERRAL_SLACK)
    return floor, ceiling


class _Small(NamedTuple):
    small: bool


def plan_for(conn: psycopg.Connection, job_filter: JobFilter) -> SearchPlan:
    """The plan for this filter, with what the database says about it (a small queue, id
    bounds of the time filters)."""
    small = False
    if job_filter.queue is not None and job_filter.state != "failed" and not job_filter.ids:
        row = fetch_optional(
            conn, _Small, SMALL_QUEUE_SQL, {"queue": job_filter.queue, "small": SMALL_QUEUE}
        )
        small = row is not None and row.small
    plan = search_plan(job_filter, small)
    if job_filter.ids:
        return plan
    floor, ceiling = id_bounds(conn, job_filter)
    extra = (("id_floor",) if floor is not None else ()) + (
        ("id_ceiling",) if ceiling is not None else ()
    )
    return dataclasses.replace(
        plan, driver=(*plan.driver, *extra), id_floor=floor, id_ceiling=ceiling
    )


def _complete(plan: SearchPlan, count: int, lowest: int | None, scan: int) -> bool:
    """Whether the candidate walk saw them all: fewer than the window, or down to the floor."""
    return count < scan or lowest is None or (plan.id_floor is not None and lowest <= plan.id_floor)


@dataclass(frozen=True)
class Searched:
    """How far a page's candidate walk went when the page did not fill: `count` candidates,
    down to job `lowest_id`; `complete` when that was all of them."""

    count: int
    lowest_id: int | None
    complete: bool
    walks: str


class JobRow(TypedDict):
    """A row of the Jobs page: args as a redacted one-line preview, times in UTC."""

    id: int
    state: str
    status: str
    queue_name: str
    task_name: str
    priority: int
    attempts: int
    lock: str | None
    queueing_lock: str | None
    scheduled_at: datetime | None
    worker_id: int | None
    abort_requested: bool
    deferred_at: datetime | None
    finished_at: datetime | None
    args: str


def _page_row(
    job_id: int,
    state: str,
    status: str,
    queue_name: str,
    task_name: str,
    priority: int,
    attempts: int,
    lock: str | None,
    queueing_lock: str | None,
    scheduled_at: datetime | None,
    worker_id: int | None,
    abort_requested: bool,
    args: Json,  # None when too big to ship whole: then args_text has the first characters
    args_text: str | None,
    deferred_at: datetime | None,
    finished_at: datetime | None,
) -> JobRow:
    """A row of PAGE, its columns in the query's order."""
    return JobRow(
        id=job_id,
        state=state,
        status=status,
        queue_name=queue_name,
        task_name=task_name,
        priority=priority,
        attempts=attempts,
        lock=lock,
        queueing_lock=queueing_lock,
        scheduled_at=utc(scheduled_at),
        worker_id=worker_id,
        abort_requested=abort_requested,
        deferred_at=utc(deferred_at),
        finished_at=utc(finished_at),
        args=preview_args(args, args_text),
    )


@dataclass(frozen=True)
class JobPage:
    rows: list[JobRow]
    next_before: int | None  # the `before` of the next ("older") page; None: no older page
    searched: Searched | None  # set when the page did not fill (how far it looked)
    scan: int  # the candidate limit per page


class _Extent(NamedTuple):
    """How far a candidate walk went (EXTENT): how many, down to which id."""

    candidates: int
    lowest: int | None


def _page_statement(
    plan: SearchPlan,
    driver: tuple[str, ...],
    job_filter: JobFilter,
    limit: int,
    before: int | None,
    scan: int,
) -> tuple[str, dict[str, object]]:
    params = (
        _params(job_filter)
        | plan.bounds()
        | {
            "before": before,
            "scan": scan,
            "limit": limit + 1,  # one more tells whether an older page exists
            "max_args_bytes": MAX_ARGS_BYTES,
            "preview_chars": ARGS_PREVIEW_CHARS,
        }
    )
    query = PAGE.format(source=_source(driver), driver=_sql(driver), residual=_sql(plan.residual))
    return query, params


def page_query(
    conn: psycopg.Connection, job_filter: JobFilter, limit: int, before: int | None, scan: int
) -> tuple[str, dict[str, object]]:
    """The statement of one page and its parameters (what bench/bench_jobs.py EXPLAINs)."""
    plan = plan_for(conn, job_filter)
    return _page_statement(plan, _driver(plan, before), job_filter, limit, before, scan)


def load_jobs_page(
    conn: psycopg.Connection,
    job_filter: JobFilter,
    limit: int = 50,
    before: int | None = None,
    scan: int = 100_000,
) -> JobPage:
    """One page of jobs matching the filter, newest first, below job `before`."""
    plan = plan_for(conn, job_filter)
    driver = _driver(plan, before)
    query, params = _page_statement(plan, driver, job_filter, limit, before, scan)
    rows = fetch_all(conn, _page_row, query, params)
    if len(rows) > limit:
        return JobPage(rows[:limit], rows[limit - 1]["id"], None, scan)
    extent = fetch_optional(conn, _Extent, _extent_sql(driver), params)
    count, lowest = (extent.candidates, extent.lowest) if extent else (0, None)
    complete = _complete(plan, count, lowest, scan)
    searched = Searched(count, lowest, complete, plan.walks)
    return JobPage(rows, None if complete or lowest is None else int(lowest), searched, scan)


@dataclass(frozen=True)
class JobCount:
    """How many jobs match: `exact`, or `matched` among the `searched` newest candidates with
    the planner's `estimate` of the whole (marked ≈)."""

    matched: int
    exact: bool
    searched: int | None = None
    estimate: int | None = None
    walks: str = "jobs"

    def text(self) -> str:
        """ "12 jobs match the filter", or "≈ 2,300 jobs match (planner estimate); 12 of the
        newest 100,000 jobs searched"."""
        if self.exact:
            verb = "job matches" if self.matched == 1 else "jobs match"
            return f"{self.matched:,} {verb} the filter"
        about = ""
        if self.estimate is not None:
            noun = "job matches" if self.estimate == 1 else "jobs match"
            about = f"≈ {self.estimate:,} {noun} (planner estimate); "
        return f"{about}{self.matched:,} of the newest {self.searched or 0:,} {self.walks} searched"


class _Count(NamedTuple):
    """COUNT: the matching candidates, all candidates, the lowest candidate id."""

    matched: int
    searched: int
    lowest: int | None


def count_jobs(conn: psycopg.Connection, job_filter: JobFilter, scan: int = 100_000) -> JobCount:
    """Exact when the candidates are fewer than `scan` (an index bounds them); otherwise what
    the newest `scan` hold, with the planner's estimate of the whole."""
    plan = plan_for(conn, job_filter)
    failed_only = "state:failed" in plan.driver and not plan.residual
    if failed_only and set(plan.driver) <= {"state:failed", "queue", "task"}:
        # Failed jobs of a queue, a task, or all: the ledger's exact number, a few rows.
        by = FailedJobFilter(queue=job_filter.queue, task=job_filter.task)
        total = count_failed_jobs(conn, by)
        return JobCount(total, True, total, walks=plan.walks)
    params = _params(job_filter) | plan.bounds() | {"before": None, "scan": scan}
    query = COUNT.format(
        source=_source(plan.driver), driver=_sql(plan.driver), residual=_sql(plan.residual)
    )
    row = fetch_optional(conn, _Count, query, params)
    matched, searched = (row.matched, row.searched) if row else (0, 0)
    if searched < scan:
        return JobCount(matched, True, searched, walks=plan.walks)
    estimate = estimate_jobs(conn, job_filter)
    return JobCount(matched, False, searched, estimate, plan.walks)


class _Explained(NamedTuple):
    plan: Json  # EXPLAIN (FORMAT JSON)'s one column: [{"Plan": {"Plan Rows": n, ...}}]


def _plan_rows(explained: Json) -> int:
    """The top plan node's estimated rows, each level of the JSON checked on the way down."""
    top = explained[0] if isinstance(explained, list) and explained else None
    node = top.get("Plan") if isinstance(top, dict) else None
    rows = node.get("Plan Rows") if isinstance(node, dict) else None
    if isinstance(rows, bool) or not isinstance(rows, int | float):
        raise ValueError(f"EXPLAIN (FORMAT JSON) gave no top plan's rows: {explained!r:.200}")
    return int(rows)


def estimate_jobs(conn: psycopg.Connection, job_filter: JobFilter) -> int:
    """The planner's estimate of the matching rows (EXPLAIN, nothing is read)."""
    plan = search_plan(job_filter)
    query = ESTIMATE.format(conditions=_sql((*plan.driver, *plan.residual)))
    row = fetch_optional(conn, _Explained, query, _params(job_filter))
    return _plan_rows(row.plan) if row else 0


class _Id(NamedTuple):
    id: int


class _Total(NamedTuple):
    value: int


def matching_ids_batch(
    conn: psycopg.Connection, job_filter: JobFilter, before: int, limit: int, scan: int
) -> tuple[list[int], int | None]:
    """Up to `limit` matching ids below `before`, newest first, and where the next batch
    starts (None: nothing older matches). Bulk actions walk the whole table this way, one
    bounded query at a time."""
    plan = plan_for(conn, job_filter)
    driver = _driver(plan, before)
    params = _params(job_filter) | plan.bounds() | {"before": before, "scan": scan, "limit": limit}
    query = IDS.format(source=_source(driver), driver=_sql(driver), residual=_sql(plan.residual))
    ids = [row.id for row in fetch_all(conn, _Id, query, params)]
    if len(ids) == limit:
        return ids, ids[-1]
    extent = fetch_optional(conn, _Extent, _extent_sql(driver), params)
    count, lowest = (extent.candidates, extent.lowest) if extent else (0, None)
    # (_complete is true when lowest is None; the second test says so to mypy.)
    complete = _complete(plan, count, lowest, scan)
    return ids, (None if complete or lowest is None else lowest)


def max_job_id(conn: psycopg.Connection) -> int:
    row = fetch_optional(conn, _Total, MAX_ID)
    return row.value if row else 0


@dataclass(frozen=True)
class StateCounts:
    """Jobs per state: exact for the open states while at most `cap` jobs are open (past it
    lower bounds, "n+", counted among the oldest) and failed (the ledger); planner estimates
    for the others (`estimated`)."""

    counts: dict[str, int]
    estimated: frozenset[str]
    cap: int = COUNT_CAP
    open_capped: bool = False

    def text(self, state: str) -> str:
        value = self.counts.get(state, 0)
        if state in self.estimated:
            return f"≈ {value:,}"
        capped = state in OPEN_STATES and self.open_capped
        return f"{value:,}+" if capped else f"{value:,}"


class _OpenCounts(NamedTuple):
    ready: int
    scheduled: int
    doing: int
    aborting: int
    capped: bool


def load_state_counts(conn: psycopg.Connection, cap: int = COUNT_CAP) -> StateCounts:
    row = fetch_one(conn, _OpenCounts, OPEN_COUNTS, {"cap": cap})
    failed_row = fetch_optional(conn, _Total, FAILED_TOTAL)
    counts = {
        "ready": row.ready,
        "scheduled": row.scheduled,
        "doing": row.doing,
        "abort_requested": row.aborting,
        "failed": failed_row.value if failed_row else 0,
    }
    for state in ESTIMATED_STATES:
        counts[state] = estimate_jobs(conn, JobFilter(state=state))
    return StateCounts(counts, frozenset(ESTIMATED_STATES), cap, open_capped=row.capped)


JOB_ROW = """
SELECT j.id, """ + STATE_CASE + """ AS state, j.queue_name, j.task_name, j.priority, j.attempts,
       j.lock, j.queueing_lock, j.scheduled_at, j.worker_id, j.args,
       (SELECT min(e.at) FROM procrastinate_events e
         WHERE e.job_id = j.id AND e.type = 'deferred') AS deferred_at,
       (SELECT max(e.at) FROM procrastinate_events e
         WHERE e.job_id = j.id AND e.type IN ('succeeded', 'failed', 'cancelled', 'aborted'))
           AS finished_at
FROM procrastinate_jobs j WHERE j.id = ANY(%(ids)s::bigint[]) ORDER BY j.id DESC
"""  # fmt: skip
EXPORT_HEADER = [
    "id", "state", "queue", "task", "priority", "attempts", "lock", "queueing_lock",
    "scheduled_at", "deferred_at", "finished_at", "worker_id", "args",
]  # fmt: skip


class ExportRow(TypedDict):
    """A job as the CLI and CSV downloads export it: whole args (redacted), times in UTC."""

    id: int
    state: str
    queue_name: str
    task_name: str
    priority: int
    attempts: int
    lock: str | None
    queueing_lock: str | None
    scheduled_at: datetime | None
    worker_id: int | None
    args: Json
    deferred_at: datetime | None
    finished_at: datetime | None


# A cell of an exported row (export_row).
ExportCell: TypeAlias = Json | datetime


def _export_row(
    job_id: int,
    state: str,
    queue_name: str,
    task_name: str,
    priority: int,
    attempts: int,
    lock: str | None,
    queueing_lock: str | None,
    scheduled_at: datetime | None,
    worker_id: int | None,
    args: Json,
    deferred_at: datetime | None,
    finished_at: datetime | None,
) -> ExportRow:
    """A row of JOB_ROW, its columns in the query's order."""
    return ExportRow(
        id=job_id,
        state=state,
        queue_name=queue_name,
        task_name=task_name,
        priority=priority,
        attempts=attempts,
        lock=lock,
        queueing_lock=queueing_lock,
        scheduled_at=utc(scheduled_at),
        worker_id=worker_id,
        args=redact_args(args),
        deferred_at=utc(deferred_at),
        finished_at=utc(finished_at),
    )


def export_jobs(
    conn: psycopg.Connection, job_filter: JobFilter, limit: int, scan: int = 100_000
) -> list[ExportRow]:
    """Up to `limit` matching jobs with their whole args (redacted), newest first, for the
    CLI and CSV downloads: walks page after page, each bounded."""
    out: list[ExportRow] = []
    start: int | None = max_job_id(conn) + 1
    while start is not None and len(out) < limit:
        ids, start = matching_ids_batch(conn, job_filter, start, min(1000, limit - len(out)), scan)
        if not ids:
            continue
        out.extend(fetch_all(conn, _export_row, JOB_ROW, {"ids": ids}))
    return out[:limit]


def export_row(row: ExportRow) -> list[ExportCell]:
    """The row's cells in EXPORT_HEADER's order."""
    return [
        row["id"], row["state"], row["queue_name"], row["task_name"], row["priority"],
        row["attempts"], row["lock"], row["queueing_lock"], row["scheduled_at"],
        row["deferred_at"], row["finished_at"], row["worker_id"], row["args"],
    ]  # fmt: skip
