"""What a running `jobdash demo` looks like to an operator, sampled from the dashboard's loaders.

    jobdash demo &                                  # in another terminal, or already running
    python bench/demo_run.py [--database-url URL] [--minutes 10] [--every 5]

Without a URL it joins the demo's own embedded database (JOBDASH_DATA_DIR, like the demo).
Every `--every` seconds: ready jobs (all queues), the worker's jobs in progress / concurrency,
the longest queue latency the Queue Statistics panel shows. Prints one line per minute
(median and max of each) and a summary (mean busy share, p95 / max ready, max latency).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

from bench_common import p95

from jobdash.app.read.dashboard import load_queue_stats, load_worker_health
from jobdash.core.database import connect, resolve_database_url
from jobdash.core.settings import load_settings


@dataclass(frozen=True)
class Sample:
    at_s: float
    ready: int
    busy: float | None  # jobs in progress / concurrency of live workers
    latency_s: float


def sample(url: str, started: float) -> Sample:
    with connect(url, application_name="jobdash-bench-demo") as conn:
        queues = load_queue_stats(conn)
        workers = load_worker_health(conn)
    live = [w for w in workers.workers if w.max_jobs and w.healthy]
    capacity = sum(w.max_jobs or 0 for w in live)
    ages = [q.oldest_ready_age_s or 0.0 for q in queues.queues]
    return Sample(
        at_s=time.monotonic() - started,
        ready=sum(q.ready for q in queues.queues),
        busy=sum(w.jobs for w in live) / capacity if capacity else None,
        latency_s=max(ages, default=0.0),
    )


def line(label: str, samples: list[Sample]) -> str:
    ready = [s.ready for s in samples]
    busy = [s.busy for s in samples if s.busy is not None]
    latency = [s.latency_s for s in samples]
    busy_text = f"{statistics.fmean(busy):6.0%} {max(busy):6.0%}" if busy else f"{'-':>6} {'-':>6}"
    return (
        f"{label:>6}  {statistics.median(ready):6.0f} {max(ready):6d}  {busy_text}  "
        f"{statistics.median(latency):7.1f} {max(latency):7.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--every", type=float, default=5)
    args = parser.parse_args()
    url = args.database_url or resolve_database_url(load_settings())
    started = time.monotonic()
    samples: list[Sample] = []
    print("minute   ready (median max)  busy (mean max)  latency s (median max)")
    minute: list[Sample] = []
    while time.monotonic() - started < args.minutes * 60:
        current = sample(url, started)
        if minute and int(current.at_s // 60) != int(minute[0].at_s // 60):
            print(line(str(int(minute[0].at_s // 60) + 1), minute), flush=True)
            minute = []
        samples.append(current)
        minute.append(current)
        time.sleep(max(0.0, args.every - (time.monotonic() - started - current.at_s)))
    if minute:
        print(line(str(int(minute[0].at_s // 60) + 1), minute))
    print(line("all", samples))
    ready = [float(s.ready) for s in samples]
    busy = [s.busy for s in samples if s.busy is not None]
    print(
        f"\n{len(samples)} samples; busy mean {statistics.fmean(busy):.0%}; ready p95 "
        f"{p95(ready):.0f}, max {max(ready):.0f}; samples with more than 20 ready: "
        f"{sum(r > 20 for r in ready) / len(ready):.0%}; max latency "
        f"{max(s.latency_s for s in samples):.1f} s"
    )


if __name__ == "__main__":
    main()
