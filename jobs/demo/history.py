"""A made-up day of history for a fresh `jobdash demo`, so History is not empty on first look.

    report = seed_demo_history(conn)          # the previous 24 h, up to this minute

Fills the rollup's tables (core/history_tables.py: per-task and per-queue minutes, queue depth,
error groups; then their hours and days, with the rollup's own SQL) for every minute of the
range that has no history yet, never over real rows. The traffic is the demo workload's, run
dry through the tasks' own code (simulate.py): the same tasks, durations, failures and
retries, quietest twelve hours ago, a sign-up burst every few minutes, a payment-gateway
outage of 20 minutes six hours ago.

`jobdash_demo_history` says which range holds made-up rows (the History page shows it); the
rollup state is moved to this minute when no rollup has run since, so the demo's first
rollup run does not recompute (and empty) the day just written.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from jobdash.core.history_tables import (
    HISTOGRAM_BINS,
    HISTORY_COLUMNS,
    METRIC_SUMS,
    QUEUE_HISTORY_COLUMNS,
    histogram_bin,
)
from jobdash.jobs.demo.simulate import Attempt, simulate_job
from jobdash.jobs.demo.workload import (
    BURST_EVERY_S,
    DEFAULT_RATE,
    JobSpec,
    burst_jobs,
    choose_job,
)
from jobdash.jobs.maintenance.rollup import (
    BUCKET_TABLES,
    ERROR_DAYS_FROM_HOURS_SQL,
    HOUR_FROM_MINUTES_SQL,
    TRAILING_WINDOW,
    covering_days,
    covering_hours,
)

HOURS = 24
MINUTE = timedelta(minutes=1)
QUEUES = ("default", "emails", "reports", "billing", "jobdash")
ROLLUP_TASK = ("jobdash", "jobdash:rollup")
# The afternoon's incident: the payment gateway times out, charges retry and some fail.
OUTAGE_TASK = "shop.charge_card"
OUTAGE_FAILURE_RATE = 0.55
OUTAGE_MINUTES = 20

MARKER_SQL = """
CREATE TABLE IF NOT EXISTS jobdash_demo_history (
    id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    seeded_from timestamptz NOT NULL,
    seeded_until timestamptz NOT NULL,
    seeded_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE jobdash_demo_history IS
    'History before seeded_until includes made-up rows (jobdash demo); not real traffic';
"""
MARK_SQL = """
INSERT INTO jobdash_demo_history (seeded_from, seeded_until) VALUES (%(start)s, %(end)s)
ON CONFLICT (id) DO UPDATE SET
    seeded_from = least(jobdash_demo_history.seeded_from, excluded.seeded_from),
    seeded_until = greatest(jobdash_demo_history.seeded_until, excluded.seeded_until),
    seeded_at = now()
"""
OCCUPIED_SQL = """
SELECT bucket FROM jobdash_history_queue_minute WHERE bucket >= %(start)s AND bucket < %(end)s
UNION
SELECT bucket FROM jobdash_queue_depth_minute WHERE bucket >= %(start)s AND bucket < %(end)s
"""
QUEUE_MINUTES_SQL = f"""
INSERT INTO jobdash_history_queue_minute ({QUEUE_HISTORY_COLUMNS})
SELECT bucket, queue_name, {METRIC_SUMS}
  FROM jobdash_history_minute WHERE bucket = ANY(%(buckets)s)
 GROUP BY 1, 2
"""
# No rollup since before this minute: start recording from here (see the module's docstring).
STATE_SQL = """
UPDATE jobdash_rollup_state
   SET last_run_at = %(end)s, recompute_from = %(end)s, last_window_start = %(end)s
 WHERE last_run_at IS NULL OR last_run_at < %(end)s - %(trailing)s::interval
"""
DEPTH_COLUMNS = (
    "bucket, queue_name, samples, ready_sum, scheduled_sum, doing_sum, ready_max, "
    "scheduled_max, doing_max, oldest_ready_age_max_s"
)
ERROR_COLUMNS = (
    "bucket, queue_name, task_name, exception_type, failures, first_seen, last_seen, "
    "example_message, example_job_id"
)


@dataclass(frozen=True)
class DemoHistoryReport:
    start: datetime
    end: datetime
    minutes: int  # minutes filled (the others already had history)
    jobs: int

    def summary(self) -> str:
        if not self.minutes:
            return "demo history: every minute of the last day already has history"
        same_day = self.start.date() == self.end.date()
        end = f"{self.end:%H:%M}" if same_day else f"{self.end:%Y-%m-%d %H:%M}"
        return (
            f"demo history: {self.minutes:,} minutes from {self.start:%Y-%m-%d %H:%M} to "
            f"{end} UTC made up ({self.jobs:,} jobs), marked as demo data"
        )


def traffic_share(at: datetime, peak_at: datetime) -> float:
    """How busy the shop is at `at`, of its busiest: 1.0 at `peak_at` (the end of the made-up
    day, so it joins the live demo's traffic without a step), 0.4 twelve hours before."""
    hours = (peak_at - at).total_seconds() / 3600
    return 0.4 + 0.6 * (0.5 + 0.5 * math.cos(2 * math.pi * hours / 24))


@dataclass
class ErrorGroup:
    """One minute's failures of one task and exception type: count, first and last end
    (epoch seconds) and the latest failure's message."""

    failures: int
    first: float
    last: float
    message: str


# A row for COPY, its values in the table's column order.
Row = tuple[object, ...]


@dataclass
class Buckets:
    """Rows being made up, keyed as the rollup's tables are, minutes as epoch minutes."""

    history: dict[tuple[int, str, str], list[float]] = field(default_factory=dict)
    errors: dict[tuple[int, str, str, str], ErrorGroup] = field(default_factory=dict)
    busy_s: dict[tuple[int, str], float] = field(default_factory=dict)
    ready_peak: dict[tuple[int, str], int] = field(default_factory=dict)


# A made-up job: its queue, task and attempts (simulate.py).
Made = tuple[str, str, list[Attempt]]


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method in chunks keeps exp() from underflowing for large means.
    count, remaining = 0, mean
    while remaining > 0:
        step = min(remaining, 30.0)
        remaining -= step
        limit, product = math.exp(-step), rng.random()
        while product > limit:
            count += 1
            product *= rng.random()
    return count


# Metric columns after (bucket, queue, task): started, succeeded, failed, retried, cancelled,
# aborted, duration_count, duration_sum_ms, duration_max_ms, then the histogram bins.
_COUNT_INDEX = {"started": 0, "succeeded": 1, "failed": 2, "retried": 3}
_BIN_OFFSET = 9


def _row(buckets: Buckets, key: tuple[int, str, str]) -> list[float]:
    row = buckets.history.get(key)
    if row is None:
        row = [0.0] * (_BIN_OFFSET + HISTOGRAM_BINS)
        row[8] = -1.0  # no max yet
        buckets.history[key] = row
    return row


def _record(buckets: Buckets, made: Made, started_s: float) -> None:
    """A job's attempts into the buckets: `started_s` is its first start, in epoch seconds."""
    queue, task, attempts = made
    at = started_s
    for attempt in attempts:
        minute = int(at // 60)
        _row(buckets, (minute, queue, task))[0] += 1
        busy_key = (minute, queue)
        buckets.busy_s[busy_key] = buckets.busy_s.get(busy_key, 0.0) + attempt.seconds
        ended = at + attempt.seconds
        end_minute = int(ended // 60)
        row = _row(buckets, (end_minute, queue, task))
        row[_COUNT_INDEX[attempt.outcome]] += 1
        ms = attempt.seconds * 1000
        row[6] += 1
        row[7] += ms
        row[8] = max(row[8], ms)
        row[_BIN_OFFSET + histogram_bin(ms)] += 1
        if attempt.outcome == "failed":
            key = (end_minute, queue, task, attempt.exception_type or "builtins.Exception")
            group = buckets.errors.get(key)
            if group is None:
                buckets.errors[key] = ErrorGroup(1, ended, ended, attempt.message or "")
            else:
                if ended >= group.last:  # the example is the latest failure's
                    group.last, group.message = ended, attempt.message or ""
                group.failures += 1
                group.first = min(group.first, ended)
        at = ended + attempt.retry_in_s


def _made(spec: JobSpec, rng: random.Random, failure_rate: float | None = None) -> Made:
    from jobdash.jobs.demo import app as demo

    queue = demo.app.tasks[spec.task_name].queue
    return queue, spec.task_name, simulate_job(spec, rng, failure_rate)


@dataclass(frozen=True)
class Pools:
    """Jobs simulated once and drawn from for every minute (simulating each of a day's
    ~150,000 jobs would take half a minute; a few thousand of each kind tell the same)."""

    stream: list[Made]
    outage_charges: list[Made]
    bursts: list[list[Made]]
    periodic: dict[str, list[Made]]

    @classmethod
    def simulate(cls, rng: random.Random, size: int = 12_000) -> Pools:
        specs = [choose_job(rng) for _ in range(size)]
        charges = [s for s in specs if s.task_name == OUTAGE_TASK]
        periodic = {
            "ping": JobSpec("shop.heartbeat_ping", {"timestamp": 0}),
            "cache": JobSpec("shop.refresh_dashboard_cache", {"timestamp": 0}),
            "cleanup": JobSpec("shop.cleanup_sessions", {"timestamp": 0}),
            "hourly": JobSpec("shop.scheduled_report", {"timestamp": 0, "report": "hourly-sales"}),
            "nightly": JobSpec("shop.scheduled_report", {"timestamp": 0, "report": "daily-ledger"}),
            "reminder": JobSpec("shop.send_reminder", {"order_id": 1}),
        }
        return cls(
            # Reminders are deferred to run later: they are drawn when due (periodic pool).
            stream=[_made(s, rng) for s in specs if s.schedule_in_s is None],
            outage_charges=[_made(s, rng, OUTAGE_FAILURE_RATE) for s in charges],
            bursts=[[_made(s, rng) for s in burst_jobs(rng)] for _ in range(40)],
            periodic={k: [_made(s, rng) for _ in range(200)] for k, s in periodic.items()},
        )


def _periodic(pools: Pools, minute: int, rng: random.Random) -> list[tuple[Made, float]]:
    """The demo App's periodic tasks due in this minute, with their second in it."""
    at = datetime.fromtimestamp(minute * 60, UTC)
    due = [("ping", s) for s in (0, 15, 30, 45)] + [("cache", 0.1)]
    if at.minute % 5 == 0:
        due.append(("cleanup", 0.1))
    if at.minute == 0:
        due.append(("hourly", 0.1))
        if at.hour == 2:
            due.append(("nightly", 0.1))
    return [(rng.choice(pools.periodic[kind]), second) for kind, second in due]


def make_up_minutes(
    minutes: list[datetime], rng: random.Random, *, rate: float, outage_start: datetime,
    peak_at: datetime,
) -> tuple[Buckets, int]:  # fmt: skip
    """The rows of these minutes (pure: no database)."""
    pools = Pools.simulate(rng)
    buckets = Buckets()
    burst_chance = 60 / (sum(BURST_EVERY_S) / 2)
    outage = range(
        int(outage_start.timestamp() // 60), int(outage_start.timestamp() // 60) + OUTAGE_MINUTES
    )
    jobs = 0
    for when in minutes:
        minute = int(when.timestamp() // 60)
        share = traffic_share(when, peak_at)
        start_s = minute * 60.0
        chosen = [
            (made, rng.uniform(0, 60))
            for made in rng.choices(pools.stream, k=_poisson(rng, rate * 60 * share))
        ]
        if minute in outage:
            chosen = [
                (rng.choice(pools.outage_charges), second)
                if made[1] == OUTAGE_TASK
                else (made, second)
                for made, second in chosen
            ]
        if rng.random() < burst_chance * share:
            second = rng.uniform(0, 55)
            burst = rng.choice(pools.bursts)
            chosen += [(made, second + rng.uniform(0, 1)) for made in burst]
            for queue in {made[0] for made in burst}:
                buckets.ready_peak[minute, queue] = sum(m[0] == queue for m in burst) // 2
        chosen += _periodic(pools, minute, rng)
        reminders = _poisson(rng, 0.02 * rate * 60 * share)
        chosen += [
            (rng.choice(pools.periodic["reminder"]), rng.uniform(0, 60)) for _ in range(reminders)
        ]
        chosen.append(
            (
                ("jobdash", "jobdash:rollup", [Attempt(rng.uniform(0.02, 0.2), "succeeded")]),
                rng.uniform(0, 2),
            )
        )
        for made, second in chosen:
            _record(buckets, made, start_s + second)
        jobs += len(chosen)
    return buckets, jobs


def _minute(epoch_minute: int) -> datetime:
    return datetime.fromtimestamp(epoch_minute * 60, UTC)


def depth_rows(
    buckets: Buckets, minutes: list[datetime], rng: random.Random, peak_at: datetime
) -> list[Row]:
    """One depth sample per queue and minute: what a healthy worker leaves waiting."""
    rows: list[Row] = []
    for when in minutes:
        minute = int(when.timestamp() // 60)
        for queue in QUEUES:
            doing = round(buckets.busy_s.get((minute, queue), 0.0) / 60)
            peak = buckets.ready_peak.get((minute, queue), 0)
            ready = peak or (1 if rng.random() < 0.15 else 0)
            scheduled = (
                round(rng.gauss(35, 4) * traffic_share(when, peak_at)) if queue == "emails" else 0
            )
            age = None if not ready else rng.uniform(4, 15) if peak else rng.uniform(0.1, 1.5)
            rows.append((when, queue, 1, ready, scheduled, doing, ready, scheduled, doing, age))
    return rows


def _history_rows(buckets: Buckets, keep: set[int]) -> list[Row]:
    rows: list[Row] = []
    for (minute, queue, task), values in buckets.history.items():
        if minute not in keep:
            continue
        counts = [int(v) for v in values[:7]] + [values[7], values[8] if values[8] >= 0 else None]
        bins = (int(v) for v in values[_BIN_OFFSET:])
        rows.append((_minute(minute), queue, task, *counts, *bins))
    return rows


def _error_rows(buckets: Buckets, keep: set[int]) -> list[Row]:
    return [
        (
            _minute(minute), queue, task, kind, group.failures,
            datetime.fromtimestamp(group.first, UTC), datetime.fromtimestamp(group.last, UTC),
            group.message, None,
        )
        for (minute, queue, task, kind), group in buckets.errors.items()
        if minute in keep
    ]  # fmt: skip


def _copy(conn: psycopg.Connection, table: str, columns: str, rows: list[Row]) -> None:
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # noqa: S608
        for row in rows:
            copy.write_row(row)


def seed_demo_history(
    conn: psycopg.Connection, *, hours: float = HOURS, rate: float = DEFAULT_RATE,
    seed: int | None = None,
) -> DemoHistoryReport:  # fmt: skip
    """Make up the history of the last `hours` up to this minute where there is none, in one
    transaction (`conn` in autocommit mode)."""
    rng = random.Random(seed)
    with conn.transaction():
        conn.execute("SET LOCAL timezone = 'UTC'")
        row = conn.execute("SELECT date_trunc('minute', now())").fetchone()
        assert row is not None
        end: datetime = row[0].astimezone(UTC)
        start = end - timedelta(hours=hours)
        window = {"start": start, "end": end}
        occupied = {r[0] for r in conn.execute(OCCUPIED_SQL, window).fetchall()}
        count = int((end - start) / MINUTE)
        minutes = [m for m in (start + i * MINUTE for i in range(count)) if m not in occupied]
        outage_start = (end - timedelta(hours=6)).replace(minute=10)
        buckets, jobs = make_up_minutes(
            minutes, rng, rate=rate, outage_start=outage_start, peak_at=end
        )
        keep = {int(m.timestamp() // 60) for m in minutes}
        _copy(conn, "jobdash_history_minute", HISTORY_COLUMNS, _history_rows(buckets, keep))
        conn.execute(QUEUE_MINUTES_SQL, {"buckets": minutes})
        _copy(
            conn,
            "jobdash_queue_depth_minute",
            DEPTH_COLUMNS,
            depth_rows(buckets, minutes, rng, end),
        )
        _copy(conn, "jobdash_error_groups_minute", ERROR_COLUMNS, _error_rows(buckets, keep))
        if minutes:
            _recompute_coarser(conn, minutes[0], minutes[-1] + MINUTE)
            conn.execute(MARKER_SQL)
            conn.execute(MARK_SQL, {"start": minutes[0], "end": end})
            conn.execute(STATE_SQL, {"end": end, "trailing": TRAILING_WINDOW})
    return DemoHistoryReport(start, end, len(minutes), jobs)


def _recompute_coarser(conn: psycopg.Connection, start: datetime, end: datetime) -> None:
    """Hours and days from the minutes, as the rollup recomputes them."""
    hour_start, hour_end = covering_hours(start, end)
    for table in BUCKET_TABLES:
        conn.execute(
            f"DELETE FROM jobdash_{table}_hour WHERE bucket >= %s AND bucket < %s",  # noqa: S608
            (hour_start, hour_end),
        )
        conn.execute(HOUR_FROM_MINUTES_SQL[table], {"start": hour_start, "end": hour_end})
    day_start, day_end = covering_days(start, end)
    conn.execute(
        "DELETE FROM jobdash_error_groups_day WHERE bucket >= %s AND bucket < %s",
        (day_start, day_end),
    )
    conn.execute(ERROR_DAYS_FROM_HOURS_SQL, {"start": day_start, "end": day_end})
