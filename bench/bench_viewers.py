"""The Streamlit server's cost per viewer of the dashboard page, and the database's.

    python bench/bench_viewers.py [--viewers 1,10,50] [--minutes 5] [--jobs 20000] [--reuse]
                                  [--memory-viewers 5 --memory-minutes 20]

A real `jobdash serve` (the same command and flags) on a seeded database
`jobdash_bench_viewers`, reached through a counting proxy (bench/statement_proxy.py) so the
dashboard's own statements are counted. Meanwhile the bench keeps the data moving the way a
busy queue does (each second: a job deferred, one finished, one failed now and then, worker
heartbeats), so every tick has new data to draw.

Viewers are websocket clients speaking Streamlit's protocol as the browser does
(tests/streamlit_viewer.py): one full run, then each panel's `run_every` timer answered with a
fragment rerun, cached messages announced by hash. Not Chromium: on this 2-core machine fifty
browsers would measure the browsers; the server cannot tell these clients from browsers (same
messages), but they do not draw. Their CPU is the bench's, not the server's.

Per level: the server process's CPU (user + system, from /proc via psutil) and RSS over the
measured window after a warm-up, statements per minute through the proxy, and each panel's
tick-to-answer latency (a tick answered later than the panel's interval means the panel fell
behind). `--memory-*`: RSS of the server sampled over a longer run with a few viewers, as
growth per refresh.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_common import database_url  # noqa: E402

from bench.statement_proxy import StatementProxy  # noqa: E402
from jobdash.core.schema import migrate  # noqa: E402
from jobdash.jobs.demo.seed import seed  # noqa: E402
from tests.streamlit_process import free_port, healthy  # noqa: E402
from tests.streamlit_viewer import Viewer  # noqa: E402

DATABASE = "jobdash_bench_viewers"
WARMUP_S = 15.0

ACTIVITY = """
WITH fresh AS (
    INSERT INTO procrastinate_jobs (queue_name, task_name, args, status)
    VALUES ('default', 'demo.tasks.send_email', '{"to": "bench"}', 'todo')
    RETURNING id
), started AS (
    UPDATE procrastinate_jobs SET status = 'doing'
    WHERE id = (SELECT min(id) FROM procrastinate_jobs WHERE status = 'todo'
                AND queue_name = 'default' AND scheduled_at IS NULL)
    RETURNING id
)
SELECT (SELECT id FROM started)
"""


def prepare(server: str, jobs: int, reuse: bool) -> str:
    url = database_url(server, DATABASE)
    with psycopg.connect(server, autocommit=True) as admin:
        exists = admin.execute("select 1 from pg_database where datname = %s", (DATABASE,))
        if exists.fetchone() and reuse:
            print(f"reusing {DATABASE}", file=sys.stderr)
            return url
        admin.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(DATABASE))
        )
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
    migrate(url)
    seed(url, jobs)
    return url


class Activity:
    """A busy queue, once a second: one job deferred, one started, the previous one finished
    (every fifth failed), heartbeats of the seeded workers. Writes bypass the proxy."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="activity")

    def __enter__(self) -> Activity:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            doing: int | None = None
            n = 0
            while not self.stop.wait(1.0):
                n += 1
                if doing is not None:
                    status = "failed" if n % 5 == 0 else "succeeded"
                    conn.execute(
                        "UPDATE procrastinate_jobs SET status = %s, attempts = 1 WHERE id = %s",
                        (status, doing),
                    )
                doing = conn.execute(ACTIVITY).fetchone()[0]
                conn.execute("UPDATE procrastinate_workers SET last_heartbeat = now()")
                conn.execute("UPDATE jobdash_workers SET updated_at = now()")


@dataclass
class Server:
    popen: subprocess.Popen
    base_url: str
    process: psutil.Process  # the Streamlit process itself (serve runs it as a child)

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.popen.kill()


def start_server(url: str, log: Path, repo: Path = REPO) -> Server:
    """`jobdash serve` of the code in `repo` (another checkout measures the code before)."""
    port = free_port()
    command = [sys.executable, "-m", "jobdash", "serve", "--database-url", url]
    command += ["--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    with log.open("wb") as out:
        popen = subprocess.Popen(command, cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not healthy(base_url):
        if popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    parent = psutil.Process(popen.pid)
    candidates = [parent, *parent.children(recursive=True)]
    listening = [
        p for p in candidates
        if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
               for c in p.net_connections("tcp"))
    ]  # fmt: skip
    return Server(popen, base_url, listening[0] if listening else parent)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


@dataclass
class Level:
    viewers: int
    seconds: float
    cpu_s: float
    rss_start_mb: float
    rss_end_mb: float
    statements: int
    empty_queries: int
    full_runs: int
    panels: dict[str, dict[str, float]]
    fragment_runs: int

    @property
    def cpu_s_per_min(self) -> float:
        return self.cpu_s * 60 / self.seconds

    @property
    def statements_per_min(self) -> float:
        return self.statements * 60 / self.seconds


def open_viewers(base_url: str, count: int, spread_s: float) -> list[Viewer]:
    """Tabs opened at random moments over `spread_s`, as people open them (timers out of phase)."""
    rng = random.Random(count)
    viewers: list[Viewer] = []
    try:
        for _ in range(count):
            viewers.append(Viewer(base_url).open())
            time.sleep(rng.uniform(0, 2 * spread_s / max(1, count)))
    except Exception:
        for viewer in viewers:
            viewer.close()
        raise
    return viewers


def panel_figures(viewers: list[Viewer], marks: dict[int, dict[str, int]]) -> dict:
    """Per panel: latencies (s) of ticks answered in the window, ticks sent, late ticks."""
    out: dict[str, dict[str, float]] = {}
    by_panel: dict[str, list[float]] = {}
    intervals: dict[str, float] = {}
    ticks: dict[str, int] = {}
    for index, viewer in enumerate(viewers):
        for fragment in viewer.fragments.values():
            start = marks[index].get(fragment.fragment_id, 0)
            by_panel.setdefault(fragment.heading, []).extend(fragment.latencies[start:])
            intervals[fragment.heading] = fragment.interval
            ticks[fragment.heading] = ticks.get(fragment.heading, 0) + fragment.ticks
    for heading, latencies in sorted(by_panel.items()):
        latencies.sort()
        interval = intervals[heading]
        late = sum(1 for x in latencies if x > interval)
        out[heading] = {
            "interval": interval,
            "answered": len(latencies),
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
            "max": latencies[-1] if latencies else float("nan"),
            "late": late,
        }
    return out


def measure(server: Server, proxy: StatementProxy, count: int, seconds: float) -> Level:
    viewers = open_viewers(server.base_url, count, spread_s=5.0)
    try:
        time.sleep(WARMUP_S)
        dead = [v for v in viewers if v.closed.is_set()]
        if dead:
            raise RuntimeError(f"{len(dead)} viewers lost their session: {dead[0].errors}")
        marks = {
            i: {f.fragment_id: len(f.latencies) for f in v.fragments.values()}
            for i, v in enumerate(viewers)
        }
        runs0 = sum(f.runs for v in viewers for f in v.fragments.values())
        full0 = sum(v.full_runs for v in viewers)
        cpu0, rss0, counts0 = cpu_seconds(server.process), rss_mb(server.process), proxy.snapshot()
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        cpu1, rss1, counts1 = cpu_seconds(server.process), rss_mb(server.process), proxy.snapshot()
        runs1 = sum(f.runs for v in viewers for f in v.fragments.values())
        full1 = sum(v.full_runs for v in viewers)
        return Level(
            viewers=count,
            seconds=elapsed,
            cpu_s=cpu1 - cpu0,
            rss_start_mb=rss0,
            rss_end_mb=rss1,
            statements=counts1.statements - counts0.statements,
            empty_queries=counts1.empty_queries - counts0.empty_queries,
            full_runs=full1 - full0,
            panels=panel_figures(viewers, marks),
            fragment_runs=runs1 - runs0,
        )
    finally:
        for viewer in viewers:
            viewer.close()
        time.sleep(3)  # let the server drop the sessions before the next level


def memory_run(server: Server, count: int, seconds: float, every_s: float = 15.0) -> None:
    viewers = open_viewers(server.base_url, count, spread_s=5.0)
    try:
        time.sleep(WARMUP_S)
        samples = []
        runs0 = sum(f.runs for v in viewers for f in v.fragments.values())
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            samples.append((time.monotonic() - started, rss_mb(server.process)))
            time.sleep(every_s)
        samples.append((time.monotonic() - started, rss_mb(server.process)))
        runs = sum(f.runs for v in viewers for f in v.fragments.values()) - runs0
    finally:
        for viewer in viewers:
            viewer.close()
    first, last = samples[0][1], samples[-1][1]
    half = samples[len(samples) // 2][1]
    print(f"\nMemory, {count} viewers for {seconds / 60:.0f} min ({runs:,} panel refreshes):")
    print("| minute | RSS MB |\n|---:|---:|")
    for at, mb in samples[:: max(1, len(samples) // 12)]:
        print(f"| {at / 60:.1f} | {mb:.1f} |")
    print(
        f"\nRSS {first:.1f} → {half:.1f} (half-way) → {last:.1f} MB; "
        f"growth per refresh {(last - first) * 1024 / max(1, runs):.2f} KiB overall, "
        f"{(last - half) * 1024 / max(1, runs // 2):.2f} KiB over the second half"
    )


def print_levels(levels: list[Level]) -> None:
    print(
        "\n| viewers | server CPU s/min | per viewer s/min | % of one core | RSS MB (start → end)"
        " | DB statements/min | pool checks/min | panel refreshes/min | full reruns |"
    )
    print("|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for level in levels:
        print(
            f"| {level.viewers} | {level.cpu_s_per_min:.1f} | "
            f"{level.cpu_s_per_min / level.viewers:.2f} | "
            f"{level.cpu_s / level.seconds * 100:.0f} | "
            f"{level.rss_start_mb:.0f} → {level.rss_end_mb:.0f} | {level.statements_per_min:.0f} | "
            f"{level.empty_queries * 60 / level.seconds:.0f} | "
            f"{level.fragment_runs * 60 / level.seconds:.0f} | {level.full_runs} |"
        )
    print(
        "\nTick → answer latency per panel (s; late = answered after the panel's interval, "
        "i.e. the panel fell behind):"
    )
    print("| viewers | panel | every | ticks answered | p50 | p95 | max | late |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for level in levels:
        for heading, f in level.panels.items():
            print(
                f"| {level.viewers} | {heading} | {f['interval']:.0f} s | {f['answered']:.0f} | "
                f"{f['p50']:.3f} | {f['p95']:.3f} | {f['max']:.3f} | {f['late']:.0f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--viewers", default="1,10,50")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--memory-viewers", type=int, default=0)
    parser.add_argument("--memory-minutes", type=float, default=20.0)
    parser.add_argument("--log", default="/tmp/bench_viewers_server.log")
    parser.add_argument(
        "--repo", type=Path, default=REPO, help="serve this checkout's code (default: this one)"
    )
    args = parser.parse_args()

    url = prepare(args.server, args.jobs, args.reuse)
    proxy = StatementProxy(url)
    server = start_server(proxy.url, Path(args.log), args.repo)
    print(f"server pid {server.process.pid} at {server.base_url}", file=sys.stderr)
    try:
        with Activity(url):
            if args.memory_viewers:
                memory_run(server, args.memory_viewers, args.memory_minutes * 60)
                return
            levels = []
            for count in [int(v) for v in args.viewers.split(",")]:
                try:
                    levels.append(measure(server, proxy, count, args.minutes * 60))
                except (TimeoutError, RuntimeError) as exc:
                    # A server too busy to accept sessions is a result too.
                    print(f"\n{count} viewers: could not be served ({exc})")
                    break
                print(
                    f"{count} viewers: {levels[-1].cpu_s_per_min:.1f} CPU s/min",
                    file=sys.stderr,
                )
            print(f"\nServing {args.repo}; {args.minutes:g} min a level, {WARMUP_S:.0f} s warm-up")
            print_levels(levels)
    finally:
        server.stop()
        proxy.close()


if __name__ == "__main__":
    main()
