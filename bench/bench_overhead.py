"""What Jobdash costs a team's job throughput: drain, defer and database cost, side by side.

    python bench/bench_overhead.py [--jobs 20000] [--rounds 16] [--server URL] [--only a,b,c]
        [--schema-variant FILE.sql ...] [--serial-jobs 2000] [--quick] [--output FILE.md]

Variants, each run on a fresh database copied from a template built once per variant:
  a  Procrastinate's schema only, plain Procrastinate worker (`procrastinate worker`)
  b  after `jobdash migrate` (Jobdash's triggers and indexes), plain worker
  c  after `jobdash migrate`, Jobdash's instrumented worker (`jobdash worker`)
  FILE  --schema-variant FILE.sql (repeatable): Procrastinate's schema + FILE instead of
        `jobdash migrate`, plain worker, named after the file; --only then defaults to "a".

One run:
  1. defer: --jobs no-op jobs in one `procrastinate_defer_jobs_v1` call (timed), then ANALYZE
     (a running database has statistics; with the template's empty-table ones Procrastinate's
     fetch sorts every queued job until autoanalyze happens to run);
  2. drain at concurrency 10: rate = jobs / (last `succeeded` − first `started` event), so
     start-up and shutdown are excluded; database CPU (psutil, every server process attached
     to the run's database) and buffers touched (pg_stat_database) per job; worker CPU; the
     CPU the rest of the machine used meanwhile ("other load");
  3. serial path: --serial-jobs jobs fetched and finished one after the other with the
     worker's own SQL on one connection (no Python, no concurrency): the database's cost of
     a job, backend CPU and buffers, the least noisy number here;
  4. --single-defers one-job defers, one transaction each (timed).
Each round runs every variant once, in an order rotated by one per round. Ratios are paired
within a round (variant / a, and c / b): median, 5th–95th percentiles and a distribution-free
95 % confidence interval of the median.

The instrumented worker defers `jobdash:rollup` at start and every minute; those jobs have
higher ids than the backlog, so they run once it has been fetched ("rollup in drain" counts
any that started earlier). Their run after the drain is timed ("rollup run s").

Jobdash is driven through its command line only (JOBDASH below): nothing of the project is
imported. Needs a PostgreSQL server on this machine (psutil reads its processes) and the right
to create databases; one run of this benchmark per server at a time (it drops its leftovers).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg
from bench_common import create_database, drop_database
from procrastinate.schema import SchemaManager
from psycopg.conninfo import conninfo_to_dict

# The Jobdash command line (one place to change when the package is renamed).
JOBDASH = [sys.executable, "-m", "jobdash"]
PROCRASTINATE = [sys.executable, "-m", "procrastinate"]

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks-overhead.md"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_PREFIX = "jobdash_bench_overhead_"
QUEUE = "bench"  # what bench/noop_app.py defines
SINGLE_QUEUE = "bench_single"  # single defers land here; no worker listens on it
SERIAL_QUEUE = "bench_serial"  # the serial SQL path's jobs
TASK = "noop"
CONCURRENCY = 10
POLL_S = 0.25
DRAIN_TIMEOUT_S = 900.0
ROLLUP_WAIT_S = 60.0
STATS_SETTLE_S = 0.3

DEFER_SQL = """
SELECT cardinality(procrastinate_defer_jobs_v1(ARRAY(
    SELECT ROW(%(queue)s, %(task)s, 0, NULL, NULL, '{}'::jsonb, NULL)::procrastinate_job_to_defer_v1
    FROM generate_series(1, %(n)s)
)))
"""
SINGLE_DEFER_SQL = """
SELECT procrastinate_defer_jobs_v1(ARRAY[
    ROW(%(queue)s, %(task)s, 0, NULL, NULL, '{}'::jsonb, NULL)::procrastinate_job_to_defer_v1
])
"""
# Polled during the drain: EXISTS stops at the first open job, so polling adds few buffers.
OPEN_JOBS_SQL = """
SELECT EXISTS (
    SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing') AND queue_name = %s
)
"""
# What a worker runs per job (procrastinate/sql/queries.sql), minus the Python around it.
FETCH_SQL = """
SELECT id FROM procrastinate_fetch_job_v2(%(queues)s::varchar[], %(worker_id)s)
"""
FINISH_SQL = "SELECT procrastinate_finish_job_v1(%(job_id)s, 'succeeded', false)"
# Shared-buffer pages the database's processes touched (hit or read). Work done, not time:
# unlike CPU time it does not grow when other work on the machine competes for the cores.
DB_BLOCKS_SQL = """
SELECT blks_hit + blks_read FROM pg_stat_database WHERE datname = current_database()
"""
DRAIN_SQL = """
SELECT count(*) FILTER (WHERE e.type = 'succeeded'),
       min(e.at) FILTER (WHERE e.type = 'started'),
       max(e.at) FILTER (WHERE e.type = 'succeeded')
FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id
WHERE j.queue_name = %s
"""
# Rollup jobs (queue "jobdash") that started while no-op jobs were still waiting.
ROLLUPS_IN_DRAIN_SQL = """
SELECT count(*) FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id
WHERE j.queue_name = 'jobdash' AND e.type = 'started' AND e.at < (
    SELECT max(s.at) FROM procrastinate_events s JOIN procrastinate_jobs b ON b.id = s.job_id
    WHERE b.queue_name = %s AND s.type = 'started'
)
"""
# The first rollup job's run: started (fetch) to succeeded (finish).
ROLLUP_SECONDS_SQL = """
SELECT extract(epoch FROM max(e.at) FILTER (WHERE e.type = 'succeeded')
                          - min(e.at) FILTER (WHERE e.type = 'started'))
FROM procrastinate_events e
WHERE e.job_id = (SELECT min(id) FROM procrastinate_jobs WHERE queue_name = 'jobdash')
"""
BACKEND_PIDS_SQL = """
SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    schema: str  # "plain", "jobdash", or the path of an SQL file
    instrumented: bool = False


BUILTIN = {
    "a": Variant("a", "plain Procrastinate", "plain"),
    "b": Variant("b", "jobdash migrate, plain worker", "jobdash"),
    "c": Variant("c", "jobdash migrate, instrumented worker", "jobdash", instrumented=True),
}


@dataclass(frozen=True)
class RunResult:
    variant: str
    round: int
    defer_s: float  # one batch defer of all jobs
    drain_jobs_per_s: float
    db_cpu_ms_per_job: float
    worker_cpu_ms_per_job: float
    db_blocks_per_job: float  # shared buffers touched (instrumented: incl. one rollup)
    single_defer_ms: float  # mean per one-job defer call
    serial_cpu_ms_per_job: float  # serial SQL path: backend CPU per fetch + finish
    serial_blocks_per_job: float  # serial SQL path: buffers touched per fetch + finish
    rollups_in_drain: int
    rollup_s: float  # the first rollup run (instrumented worker only), after the drain
    other_cores: float  # CPU the rest of the machine used meanwhile, in cores

    @property
    def cpu_ms_per_job(self) -> float:
        """Database + worker: on a CPU-bound machine, what a job costs in capacity."""
        return self.db_cpu_ms_per_job + self.worker_cpu_ms_per_job


# --- databases --------------------------------------------------------------------------------


def drop_leftovers(server: str) -> None:
    """Databases an interrupted earlier run of this benchmark left behind."""
    with psycopg.connect(server, autocommit=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (DB_PREFIX + "%",)
            )
        ]
    for name in names:
        drop_database(server, name)


def run_command(command: Sequence[str]) -> None:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stdout}{done.stderr}")


def build_template(server: str, variant: Variant) -> str:
    """A database holding the variant's schema, to copy for every run."""
    name = template_name(variant)
    url = create_database(server, name, template="template0")
    if variant.schema == "jobdash":
        run_command([*JOBDASH, "migrate", "--database-url", url])
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SchemaManager.get_schema())
            if variant.schema != "plain":
                conn.execute(Path(variant.schema).read_text())  # type: ignore[arg-type]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return name


def template_name(variant: Variant) -> str:
    # b and c share a schema, hence one template for both.
    key = "jobdash" if variant.schema == "jobdash" else variant.key
    return f"{DB_PREFIX}t_{key.lower()}"


# --- one run ----------------------------------------------------------------------------------


def worker_command(variant: Variant, url: str) -> list[str]:
    if variant.instrumented:
        return [
            *JOBDASH, "worker", "--app", "noop_app:app", "--database-url", url,
            "--concurrency", str(CONCURRENCY), "--queues", QUEUE,
        ]  # fmt: skip
    return [
        *PROCRASTINATE, "--app", "noop_app.app", "worker",
        "--concurrency", str(CONCURRENCY), "--queues", QUEUE,
    ]  # fmt: skip


def worker_env(url: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(BENCH_DIR), os.environ.get("PYTHONPATH")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "BENCH_DATABASE_URL": url,
        "BENCH_POOL_MAX_SIZE": str(max(4, CONCURRENCY + 2)),  # as `jobdash worker` sizes it
    }


class BackendCpu:
    """CPU seconds of the server processes attached to one database, from start() on.

    Sampled repeatedly: a process seen for the first time after start() counts from zero,
    one that exits counts up to its last sample."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.first: dict[tuple[int, float], float] = {}
        self.last: dict[tuple[int, float], float] = {}
        self.started = False

    def _processes(self) -> Iterable[tuple[tuple[int, float], float]]:
        for (pid,) in self.conn.execute(BACKEND_PIDS_SQL).fetchall():
            try:
                process = psutil.Process(pid)
                times = process.cpu_times()
                yield (pid, process.create_time()), times.user + times.system
            except psutil.Error:
                continue

    def sample(self) -> None:
        for key, cpu in self._processes():
            self.first.setdefault(key, cpu if not self.started else 0.0)
            self.last[key] = cpu

    def start(self) -> None:
        self.sample()
        self.started = True

    def total_s(self) -> float:
        return sum(self.last[key] - self.first[key] for key in self.last)


def process_cpu_s(process: psutil.Process) -> float:
    """CPU seconds of a process and its children (the worker)."""
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


@dataclass(frozen=True)
class DrainCpu:
    db_s: float  # server processes attached to the run's database
    worker_s: float  # the worker process
    other_cores: float  # the rest of the machine, in busy cores (other work on a shared box)


def busy_cpu_s() -> float:
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


def wait_until_empty(
    conn: psycopg.Connection, queue: str, worker: subprocess.Popen, log: Path, timeout: float
) -> bool:
    deadline = time.monotonic() + timeout
    while conn.execute(OPEN_JOBS_SQL, (queue,)).fetchone()[0]:  # type: ignore[index]
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited ({worker.returncode}); see {log}")
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def drain(conn: psycopg.Connection, variant: Variant, url: str, log: Path) -> DrainCpu:
    """Run a worker until the bench queue is empty (and, instrumented, until the rollup jobs
    deferred meanwhile have run, outside the measurement)."""
    cpu = BackendCpu(conn)
    cpu.start()
    machine_start, wall_start = busy_cpu_s(), time.monotonic()
    with log.open("w") as out:
        worker = subprocess.Popen(
            worker_command(variant, url), cwd=ROOT, env=worker_env(url), stdout=out, stderr=out
        )
    try:
        process = psutil.Process(worker.pid)
        worker_s = 0.0
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while conn.execute(OPEN_JOBS_SQL, (QUEUE,)).fetchone()[0]:  # type: ignore[index]
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited ({worker.returncode}); see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"drain did not finish in {DRAIN_TIMEOUT_S:.0f} s; see {log}")
            time.sleep(POLL_S)
            cpu.sample()
            worker_s = process_cpu_s(process) or worker_s
        cpu.sample()
        worker_s = process_cpu_s(process) or worker_s
        machine_s, wall_s = busy_cpu_s() - machine_start, time.monotonic() - wall_start
        if variant.instrumented:
            wait_until_empty(conn, "jobdash", worker, log, ROLLUP_WAIT_S)
    finally:
        stop_worker(worker)
    other = max(0.0, machine_s - cpu.total_s() - worker_s) / wall_s
    return DrainCpu(cpu.total_s(), worker_s, other)


def time_single_defers(conn: psycopg.Connection, count: int) -> float:
    """Mean ms per one-job defer, each its own statement and transaction (autocommit)."""
    if count <= 0:
        return math.nan
    params = {"queue": SINGLE_QUEUE, "task": TASK}
    start = time.perf_counter()
    for _ in range(count):
        conn.execute(SINGLE_DEFER_SQL, params)
    return (time.perf_counter() - start) * 1000 / count


def rollup_facts(conn: psycopg.Connection) -> tuple[int, float]:
    """(rollup jobs started before the last no-op job did, seconds the first one took)."""
    in_drain = conn.execute(ROLLUPS_IN_DRAIN_SQL, (QUEUE,)).fetchone()[0]  # type: ignore[index]
    seconds = conn.execute(ROLLUP_SECONDS_SQL).fetchone()[0]  # type: ignore[index]
    return in_drain, math.nan if seconds is None else float(seconds)


def database_blocks(conn: psycopg.Connection) -> int:
    """Blocks touched so far; exited backends' counts are flushed when they exit."""
    time.sleep(STATS_SETTLE_S)
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return int(conn.execute(DB_BLOCKS_SQL).fetchone()[0])  # type: ignore[index]


def defer_jobs(url: str, jobs: int) -> float:
    """Batch-defer `jobs` no-op jobs; seconds. Its own connection, closed before the drain
    is counted (closing flushes its statistics)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT 1")
        start = time.perf_counter()
        conn.execute(DEFER_SQL, {"queue": QUEUE, "task": TASK, "n": jobs})
        seconds = time.perf_counter() - start
        # Statistics as a running database has them. Without this the planner still sees
        # the empty template and Procrastinate's fetch sorts every queued job (~3 ms per
        # fetch at 10,000) until autoanalyze happens to run: the drain rate would measure
        # autoanalyze's timing.
        conn.execute("ANALYZE procrastinate_jobs, procrastinate_events")
    return seconds


def serial_path(conn: psycopg.Connection, url: str, count: int) -> tuple[float, float]:
    """Fetch and finish `count` jobs one after the other on one connection, as the worker's
    SQL does (one transaction per statement): (backend CPU ms, buffers) per job. No
    concurrency, so no SKIP LOCKED scanning and no worker: the database's own cost of a job."""
    with psycopg.connect(url, autocommit=True) as setup:
        setup.execute(DEFER_SQL, {"queue": SERIAL_QUEUE, "task": TASK, "n": count})
        setup.execute("ANALYZE procrastinate_jobs")
        worker_id = setup.execute("SELECT * FROM procrastinate_register_worker_v1()").fetchone()[0]  # type: ignore[index]
    blocks_before = database_blocks(conn)
    with psycopg.connect(url, autocommit=True) as serial:
        params = {"queues": [SERIAL_QUEUE], "worker_id": worker_id}
        serial.execute(FETCH_SQL, {**params, "queues": ["nothing"]})  # backend warmed up
        backend = psutil.Process(serial.info.backend_pid)
        before = backend.cpu_times()
        for _ in range(count):
            job_id = serial.execute(FETCH_SQL, params).fetchone()[0]  # type: ignore[index]
            serial.execute(FINISH_SQL, {"job_id": job_id})
        after = backend.cpu_times()
    blocks = database_blocks(conn) - blocks_before
    cpu_s = (after.user - before.user) + (after.system - before.system)
    return cpu_s * 1000 / count, blocks / count


def run_once(
    server: str,
    variant: Variant,
    round_no: int,
    jobs: int,
    single_defers: int,
    serial_jobs: int,
    logs: Path,
) -> RunResult:
    dbname = f"{DB_PREFIX}run_{variant.key.lower()}"
    url = create_database(server, dbname, template_name(variant))
    try:
        defer_s = defer_jobs(url, jobs)
        with psycopg.connect(url, autocommit=True) as conn:
            blocks_before = database_blocks(conn)
            cpu = drain(conn, variant, url, logs / f"worker-{variant.key}.log")
            blocks = database_blocks(conn) - blocks_before
            done, first_start, last_success = conn.execute(DRAIN_SQL, (QUEUE,)).fetchone()  # type: ignore[misc]
            if done != jobs:
                raise RuntimeError(f"{variant.key}: {done} of {jobs} jobs succeeded")
            seconds = (last_success - first_start).total_seconds()
            rollups, rollup_s = rollup_facts(conn)
            serial_ms, serial_blocks = (
                serial_path(conn, url, serial_jobs) if serial_jobs else (math.nan, math.nan)
            )
            single_ms = time_single_defers(conn, single_defers)
    finally:
        drop_database(server, dbname)
    return RunResult(
        variant=variant.key,
        round=round_no,
        defer_s=defer_s,
        drain_jobs_per_s=jobs / seconds,
        db_cpu_ms_per_job=cpu.db_s * 1000 / jobs,
        worker_cpu_ms_per_job=cpu.worker_s * 1000 / jobs,
        db_blocks_per_job=blocks / jobs,
        single_defer_ms=single_ms,
        serial_cpu_ms_per_job=serial_ms,
        serial_blocks_per_job=serial_blocks,
        rollups_in_drain=rollups,
        rollup_s=rollup_s,
        other_cores=cpu.other_cores,
    )


# --- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics (binomial); NaN if n < 6."""
    ordered = sorted(values)
    n = len(ordered)
    alpha = (1 - confidence) / 2
    k = 0  # largest k with P(Binomial(n, 1/2) < k) <= alpha
    cumulative = 0.0
    while k < n:
        cumulative += math.comb(n, k) / 2**n
        if cumulative > alpha:
            break
        k += 1
    if k == 0:
        return math.nan, math.nan
    return ordered[k - 1], ordered[n - k]


@dataclass(frozen=True)
class Spread:
    median: float
    p5: float
    p95: float
    ci_low: float
    ci_high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        low, high = median_ci(values)
        return cls(
            statistics.median(values) if values else math.nan,
            percentile(values, 0.05),
            percentile(values, 0.95),
            low,
            high,
            len(values),
        )


METRICS = {
    # name: (attribute, invert) — invert makes a time into a rate, so < 1 always means slower
    "drain": ("drain_jobs_per_s", False),
    "defer": ("defer_s", True),
    "single defer": ("single_defer_ms", True),
    "db cpu/job": ("db_cpu_ms_per_job", False),
    "db buffers/job": ("db_blocks_per_job", False),
    "serial db cpu/job": ("serial_cpu_ms_per_job", False),
    "serial buffers/job": ("serial_blocks_per_job", False),
    "worker cpu/job": ("worker_cpu_ms_per_job", False),
    "total cpu/job": ("cpu_ms_per_job", False),
}


def paired_ratios(results: list[RunResult], key: str, base: str, metric: str) -> list[float]:
    attribute, invert = METRICS[metric]
    by_round: dict[int, dict[str, RunResult]] = {}
    for result in results:
        by_round.setdefault(result.round, {})[result.variant] = result
    ratios = []
    for runs in by_round.values():
        if key in runs and base in runs:
            num, den = getattr(runs[key], attribute), getattr(runs[base], attribute)
            if num and den and not (math.isnan(num) or math.isnan(den)):
                ratios.append(den / num if invert else num / den)
    return ratios


# --- report -----------------------------------------------------------------------------------


def fmt(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def spread_cell(spread: Spread, digits: int = 3) -> str:
    return (
        f"{fmt(spread.median, digits)} [{fmt(spread.p5, digits)}–{fmt(spread.p95, digits)}]"
        f" ci {fmt(spread.ci_low, digits)}–{fmt(spread.ci_high, digits)}"
    )


def median_of(runs: list[RunResult], attribute: str) -> float:
    values = [getattr(r, attribute) for r in runs if not math.isnan(getattr(r, attribute))]
    return statistics.median(values) if values else math.nan


def variant_table(results: list[RunResult], variants: list[Variant]) -> list[str]:
    lines = [
        "| variant | runs | drain jobs/s median | p5 | p95 | batch defer ms median | p95 "
        "| single defer ms | db CPU ms/job | db buffers/job | worker CPU ms/job "
        "| serial db CPU ms/job | serial buffers/job "
        "| other load (cores) | rollup in drain | rollup run s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant in variants:
        runs = [r for r in results if r.variant == variant.key]
        if not runs:
            continue
        rate = [r.drain_jobs_per_s for r in runs]
        defer = [r.defer_s * 1000 for r in runs]
        rollups = f"{sum(1 for r in runs if r.rollups_in_drain)} of {len(runs)}"
        lines.append(
            f"| {variant.key}: {variant.label} | {len(runs)} | {statistics.median(rate):.0f} "
            f"| {percentile(rate, 0.05):.0f} | {percentile(rate, 0.95):.0f} "
            f"| {statistics.median(defer):.0f} | {percentile(defer, 0.95):.0f} "
            f"| {fmt(median_of(runs, 'single_defer_ms'))} "
            f"| {fmt(median_of(runs, 'db_cpu_ms_per_job'))} "
            f"| {fmt(median_of(runs, 'db_blocks_per_job'), 1)} "
            f"| {fmt(median_of(runs, 'worker_cpu_ms_per_job'))} "
            f"| {fmt(median_of(runs, 'serial_cpu_ms_per_job'))} "
            f"| {fmt(median_of(runs, 'serial_blocks_per_job'), 1)} "
            f"| {fmt(median_of(runs, 'other_cores'), 2)} "
            f"| {rollups if variant.instrumented else '–'} "
            f"| {fmt(median_of(runs, 'rollup_s'), 2) if variant.instrumented else '–'} |"
        )
    return lines


def ratio_pairs(variants: list[Variant]) -> list[tuple[str, str]]:
    keys = [v.key for v in variants]
    pairs = [(k, "a") for k in keys if k != "a" and "a" in keys]
    if "b" in keys and "c" in keys:
        pairs.append(("c", "b"))
    return pairs


def ratio_table(results: list[RunResult], variants: list[Variant]) -> list[str]:
    names = list(METRICS)
    lines = [
        "| ratio | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for key, base in ratio_pairs(variants):
        cells = [spread_cell(Spread.of(paired_ratios(results, key, base, m))) for m in names]
        lines.append(f"| {key}/{base} | " + " | ".join(cells) + " |")
    return lines


def machine_description(server: str) -> str:
    with psycopg.connect(server) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    freq = psutil.cpu_freq()
    return (
        f"{platform.platform()}, Python {platform.python_version()}, "
        f"{psutil.cpu_count()} logical CPUs{f' at {freq.current:.0f} MHz' if freq else ''}, "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, PostgreSQL {version} on "
        f"{conninfo_to_dict(server).get('host', 'localhost')} (same machine)"
    )


def report(
    results: list[RunResult],
    variants: list[Variant],
    args: argparse.Namespace,
    machine: str,
    loads: tuple[tuple[float, ...], tuple[float, ...]],
) -> str:
    rounds = len({r.round for r in results})
    lines = [
        "# Overhead benchmark: what Jobdash costs job throughput",
        "",
        f"`{shlex.join(['python', 'bench/bench_overhead.py', *sys.argv[1:]])}` — "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {rounds} rounds × {len(variants)} variants, "
        f"{args.jobs:,} no-op jobs per drain (concurrency {CONCURRENCY}), "
        f"{args.single_defers:,} single defers per run.",
        "",
        f"Machine: {machine}. Load average at start {loads[0][0]:.2f}, at end {loads[1][0]:.2f} "
        "(the machine is shared: pairing within rounds is what makes the ratios usable).",
        "",
    ]
    for variant in variants:
        if variant.schema not in ("plain", "jobdash"):
            lines.append(f"- {variant.key}: `{variant.schema}` on Procrastinate's schema")
    lines += [
        "",
        "## Per variant",
        "",
        *variant_table(results, variants),
        "",
        "## Paired ratios (per round; median [p5–p95] ci = 95 % CI of the median)",
        "",
        "drain, defer, single defer: variant's rate / baseline's rate (< 1 = slower). "
        "CPU: variant / baseline (> 1 = more CPU per job).",
        "",
        *ratio_table(results, variants),
        "",
        "Drain rate = jobs / (last `succeeded` − first `started` event). Batch defer = one "
        "`procrastinate_defer_jobs_v1` call with every job. Single defer = one-job calls, one "
        "transaction each, after the drain. DB CPU = server processes attached to the run's "
        "database, worker start to empty queue. DB buffers = shared-buffer pages touched "
        "(pg_stat_database, worker start to stop; with the instrumented worker this includes "
        "the rollup run after the drain). Worker CPU = the worker process. Serial = the worker's "
        "fetch and finish SQL run one job after the other on one connection (no Python, no "
        "concurrency): backend CPU and buffers per job.",
        "",
    ]
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------


def select_variants(only: str | None, schema_files: list[str]) -> list[Variant]:
    keys = [k.strip() for k in (only or ("a" if schema_files else "a,b,c")).split(",") if k]
    unknown = [k for k in keys if k not in BUILTIN]
    if unknown:
        raise SystemExit(f"--only: unknown variant(s) {', '.join(unknown)} (a, b, c)")
    variants = [BUILTIN[k] for k in keys]
    for path in schema_files:
        file = Path(path).resolve()
        if not file.is_file():
            raise SystemExit(f"--schema-variant: no such file {path}")
        variants.append(Variant(file.stem, f"{file.name}, plain worker", str(file)))
    if len({v.key for v in variants}) != len(variants):
        raise SystemExit("variant names must be unique (schema files are named by their stem)")
    return variants


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per drain (20000)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=16,
        help="rounds of every variant (16: a ±3 %% CI for buffers per job; see the docs)",
    )
    parser.add_argument("--single-defers", type=int, default=1_000, help="per run (1000)")
    parser.add_argument(
        "--serial-jobs", type=int, default=2_000, help="serial SQL path jobs per run (2000)"
    )
    parser.add_argument("--server", default=DEFAULT_SERVER, help="PostgreSQL server URL")
    parser.add_argument("--only", help="comma-separated built-in variants: a,b,c")
    parser.add_argument(
        "--schema-variant",
        action="append",
        default=[],
        metavar="FILE.sql",
        help="SQL applied on Procrastinate's schema instead of `jobdash migrate` (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="2,000 jobs, 2 rounds (a smoke test)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="markdown results file")
    parser.add_argument("--raw", help="also write every run's numbers to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.rounds, args.single_defers, args.serial_jobs = 2_000, 2, 200, 200
    return args


def run_rounds(
    args: argparse.Namespace, variants: list[Variant], logs: Path, results: list[RunResult]
) -> None:
    """Every variant once per round, in an order rotated by one each round."""
    for round_no in range(args.rounds):
        shift = round_no % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            result = run_once(
                args.server,
                variant,
                round_no,
                args.jobs,
                args.single_defers,
                args.serial_jobs,
                logs,
            )
            results.append(result)
            print(
                f"round {round_no + 1}/{args.rounds} {variant.key}: "
                f"{result.drain_jobs_per_s:.0f} jobs/s, defer {result.defer_s * 1000:.0f} ms, "
                f"db cpu {result.db_cpu_ms_per_job:.3f} ms/job, "
                f"{result.db_blocks_per_job:.1f} buffers/job, "
                f"other load {result.other_cores:.2f} cores"
                f"{', rollup in drain' if result.rollups_in_drain else ''}",
                flush=True,
            )
            if args.raw:
                Path(args.raw).write_text(json.dumps([asdict(r) for r in results], indent=1))
            if StopRequest.requested:
                print("stop requested: reporting the rounds done so far", flush=True)
                return


class StopRequest:
    """SIGTERM: finish the current run, then report the rounds done (Ctrl-C stops at once)."""

    requested = False

    @classmethod
    def handle(cls, signum: int, frame: object) -> None:
        cls.requested = True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, StopRequest.handle)
    variants = select_variants(args.only, args.schema_variant)
    machine = machine_description(args.server)
    load_start = os.getloadavg()
    drop_leftovers(args.server)
    logs = Path(tempfile.mkdtemp(prefix="jobdash-bench-overhead-"))
    results: list[RunResult] = []
    try:
        for variant in {template_name(v): v for v in variants}.values():
            build_template(args.server, variant)
        run_rounds(args, variants, logs, results)
    except KeyboardInterrupt:
        print("interrupted: reporting the rounds done so far", flush=True)
    finally:
        drop_leftovers(args.server)
    text = report(results, variants, args, machine, (load_start, os.getloadavg()))
    print("\n" + text)
    Path(args.output).write_text(text)
    print(f"written to {args.output}; worker logs of the last runs in {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
