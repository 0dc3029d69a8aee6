"""The demo looks like a healthy system: its workload keeps a worker of concurrency 4 busy
50-80 % of the time, and a burst fills the queue for a moment, then drains.

Two proofs: the load the workload asks for, computed from the tasks' own code (simulate.py
runs each task dry and sums the seconds it would sleep), and a real instrumented worker fed
by the real workload, both ten times faster than real time, for five simulated minutes.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from jobdash.jobs.demo import app as demo
from jobdash.jobs.demo import workload as workload_module
from jobdash.jobs.demo.simulate import simulate_job, worker_seconds
from jobdash.jobs.demo.workload import (
    BURST_EVERY_S,
    DEFAULT_RATE,
    Workload,
    burst_jobs,
    choose_job,
)
from tests.test_instrumentation_support import make_app

CONCURRENCY = 4
SPEED = 10  # simulated seconds per real second
SIMULATED_S = 300

READY_SQL = """
SELECT count(*) FILTER (WHERE status = 'todo'
                          AND (scheduled_at IS NULL OR scheduled_at <= now())),
       count(*) FILTER (WHERE status = 'doing')
  FROM procrastinate_jobs
"""


def offered_load(rng: random.Random, jobs: int) -> float:
    """Busy worker slots the default rate asks for, bursts included (their average rate)."""
    per_job = statistics.fmean(worker_seconds(choose_job(rng), rng) for _ in range(jobs))
    per_burst = statistics.fmean(
        sum(worker_seconds(spec, rng) for spec in burst_jobs(rng)) for _ in range(300)
    )
    return DEFAULT_RATE * per_job + per_burst / statistics.fmean(BURST_EVERY_S)


def test_the_default_rate_keeps_four_slots_busy_50_to_80_percent():
    busy = offered_load(random.Random(3), 20_000) / CONCURRENCY
    # The worker's own cost per job (fetch, events, instrumentation) comes on top: keep room.
    assert 0.5 <= busy <= 0.72, busy


def test_a_burst_is_done_by_the_spare_slots_within_half_a_minute():
    rng = random.Random(5)
    spare = CONCURRENCY - offered_load(rng, 5_000)
    bursts = [sum(worker_seconds(s, rng) for s in burst_jobs(rng)) for _ in range(500)]
    assert max(bursts) / spare < 30


def test_simulated_attempts_follow_the_tasks_code():
    rng = random.Random(1)
    declined = workload_module.JobSpec(
        "shop.charge_card", {"customer_id": 1, "amount_cents": 100, "card": "4000000000000002"}
    )
    [attempt] = simulate_job(declined, rng)
    assert attempt.outcome == "failed"
    assert attempt.exception_type == "jobdash.jobs.demo.app.PaymentDeclined"
    assert 0.2 <= attempt.seconds <= 1.0
    bad_report = workload_module.JobSpec("shop.build_report", {"report": "r", "rows": 0})
    # RetryStrategy(max_attempts=2): retried while fewer than 2 attempts were retried before.
    attempts = simulate_job(bad_report, rng)
    assert [a.outcome for a in attempts] == ["retried", "retried", "failed"]
    assert attempts[0].retry_in_s == pytest.approx(10, abs=1)
    assert attempts[-1].message == "report 'r' has no rows to aggregate"
    long_job = workload_module.JobSpec("shop.export_warehouse", {"tables": 3})
    assert 40 <= worker_seconds(long_job, rng) <= 90


def _sample(database_url: str, stop: threading.Event, samples: list[tuple[float, int, int]]):
    with psycopg.connect(database_url, autocommit=True) as conn:
        start = time.monotonic()
        while not stop.wait(0.1):
            ready, doing = conn.execute(READY_SQL).fetchone()
            samples.append((time.monotonic() - start, ready, doing))


# The demo worker as `jobdash worker` runs it, its tasks SPEED times faster.
WORKER_SCRIPT = f"""
from jobdash.jobs.demo import app as demo
from jobdash.jobs.instrumentation import run_instrumented_worker
demo.TIME_SCALE = {SPEED}
run_instrumented_worker(demo.app, concurrency={CONCURRENCY}, with_maintenance=False,
                        shutdown_graceful_timeout=1)
"""


def _worker(database_url: str) -> subprocess.Popen:
    env = {**os.environ, "JOBDASH_DATABASE_URL": database_url}
    return subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT], env=env)


def test_a_real_worker_keeps_up_and_bursts_drain(database_url, monkeypatch):
    # One burst a minute and a half in, none after it.
    burst_at_s = 90
    samples: list[tuple[float, int, int]] = []
    stop_sampling, stop_workload = threading.Event(), threading.Event()
    worker = _worker(database_url)
    connector = make_app(database_url).connector
    try:
        with demo.app.replace_connector(connector) as app, app.open():
            workload = Workload(app, seed=21, time_scale=SPEED)
            first_burst = time.monotonic() + burst_at_s / SPEED
            monkeypatch.setattr(
                workload, "_next_burst_at",
                lambda: first_burst if not workload.bursts_deferred else float("inf"),
            )  # fmt: skip
            sampler = threading.Thread(target=_sample, args=(database_url, stop_sampling, samples))
            generator = threading.Thread(target=workload.run, args=(stop_workload,))
            sampler.start()
            generator.start()
            generator.join(timeout=SIMULATED_S / SPEED)  # the measured run: until the timeout
            stop_workload.set()
            generator.join(timeout=10)
            # Then the backlog drains: poll until nothing is ready.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (len(samples) < 2 or samples[-1][1] > 0):
                time.sleep(0.25)
            stop_sampling.set()
            sampler.join(timeout=10)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
    assert workload.bursts_deferred == 1
    measured = [s for s in samples if s[0] <= SIMULATED_S / SPEED]
    ready = [r for _, r, _ in measured]
    busy = statistics.fmean(d for _, _, d in measured) / CONCURRENCY
    after_burst = [(t, r) for t, r, _ in measured if t >= burst_at_s / SPEED]
    peak = max(r for _, r in after_burst[:50])
    drained_at = next(t for t, r in after_burst if r <= 5 and t > after_burst[0][0] + 0.5)
    drain_s = (drained_at - burst_at_s / SPEED) * SPEED
    print(
        f"deferred {workload.deferred}, busy {busy:.0%}, "
        f"ready median {statistics.median(ready)}, max {max(ready)}, "
        f"burst peak {peak}, drained {drain_s:.0f} simulated s after"
    )
    assert 0.4 <= busy <= 0.85
    assert statistics.median(ready) <= 5
    assert max(ready) < 80
    assert drain_s <= 60
    assert samples[-1][1] == 0  # after the workload stops, the backlog drains completely
