"""The demo App, the workload generator, and a `jobdash demo` smoke test."""

from __future__ import annotations

import inspect
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter

import psutil
import pytest
from croniter import croniter

from jobdash.jobs.demo import app as demo
from jobdash.jobs.demo.workload import Workload, burst_jobs, choose_job, first_jobs
from tests.test_instrumentation_support import make_app, query_all, query_one

DEMO_PORTS = range(8613, 8620)  # this area's share of the project's Streamlit ports


def free_port() -> int:
    for port in DEMO_PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in 8613-8619")


def test_demo_app_has_queues_retries_and_periodic_tasks():
    tasks = {name: task for name, task in demo.app.tasks.items() if name.startswith("shop.")}
    # Readable names, not the module path (but for Procrastinate's own builtin task).
    ours = {t.name for t in demo.app.tasks.values() if t.func.__module__ == demo.__name__}
    assert ours == set(tasks) and len(ours) >= 10
    assert {task.queue for task in tasks.values()} == set(demo.QUEUES)
    assert sum(task.retry_strategy is not None for task in tasks.values()) >= 5
    assert any(inspect.iscoroutinefunction(task.func) for task in tasks.values())
    crons = [p.cron for p in demo.app.periodic_registry.periodic_tasks.values()]
    assert len(crons) >= 3
    seconds_level = [c for c in crons if len(c.split()) == 6]
    assert seconds_level, "one periodic task runs every few seconds"
    start = 1_700_000_000
    ticks = croniter(seconds_level[0], start)
    assert ticks.get_next(float) - start <= 15


def test_every_generated_job_matches_its_task_signature():
    rng = random.Random(7)
    specs = [choose_job(rng) for _ in range(3000)] + first_jobs()
    for spec in specs:
        task = demo.app.tasks[spec.task_name]
        inspect.signature(task.func).bind(**spec.kwargs)
    counts = Counter(spec.task_name.rsplit(".", 1)[1] for spec in specs)
    assert len(counts) >= 8
    assert counts["export_warehouse"] > 0  # the occasional long job
    scheduled = [s.schedule_in_s for s in specs if s.schedule_in_s is not None]
    # One-time jobs a few minutes to an hour ahead: a few dozen waiting at a time, not
    # thousands piling up over a demo.
    assert 0.01 < len(scheduled) / len(specs) < 0.04
    assert min(scheduled) >= 60 and max(scheduled) <= 3600
    bursts = [burst_jobs(rng) for _ in range(50)]
    assert all(25 <= len(b) <= 50 for b in bursts)
    for spec in (s for b in bursts for s in b):
        inspect.signature(demo.app.tasks[spec.task_name].func).bind(**spec.kwargs)


def _fast(monkeypatch):
    monkeypatch.setattr(demo, "TIME_SCALE", 1000.0)
    monkeypatch.setattr(demo, "TRANSIENT_FAILURE_RATE", 0.0)


def test_demo_tasks_fail_with_different_exception_types(monkeypatch):
    _fast(monkeypatch)
    with pytest.raises(demo.PaymentDeclined):
        demo.charge_card(customer_id=1, amount_cents=100, card="4000000000000002")
    assert demo.charge_card(customer_id=1, amount_cents=100, card="4242424242424242")
    with pytest.raises(KeyError):
        demo.refund_order(order_id=5, orders={"4": 10})
    with pytest.raises(ValueError):
        demo.resize_image(image_id=1, width=10, fmt="tiff")
    monkeypatch.setattr(demo, "TRANSIENT_FAILURE_RATE", 1.0)
    with pytest.raises(TimeoutError):
        demo.sync_inventory(sku="SKU-1")


def test_workload_defers_a_varied_stream_into_the_database(database_url):
    connector = make_app(database_url).connector
    with demo.app.replace_connector(connector) as app, app.open():
        workload = Workload(app, jobs_per_second=500, max_jobs=40, seed=11, bursts=False)
        workload.run(threading.Event())
        # No worker: all still todo, ready but for the reminder first_jobs() schedules.
        assert workload.pending_jobs() == 39
    rows = query_all(database_url, "select task_name, queue_name from procrastinate_jobs")
    assert len(rows) == 40
    assert {queue for _, queue in rows} >= {"default", "emails", "billing"}
    (ahead,) = query_one(
        database_url,
        "select count(*) from procrastinate_jobs where scheduled_at > now() + interval '50 s'",
    )
    assert ahead >= 1  # first_jobs() schedules a reminder 15 minutes ahead


def test_workload_stops_when_asked(database_url):
    connector = make_app(database_url).connector
    stop = threading.Event()
    with demo.app.replace_connector(connector) as app, app.open():
        workload = Workload(app, jobs_per_second=50)
        thread = threading.Thread(target=workload.run, args=(stop,))
        thread.start()
        deadline = time.monotonic() + 10
        while workload.deferred < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        stop.set()
        thread.join(timeout=2)
        assert not thread.is_alive()


def _dashboard_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def test_demo_smoke_runs_everything_and_stops_all_children(database_url, tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobdash",
            "demo",
            "--database-url",
            database_url,
            "--port",
            str(port),
            "--rate",
            "10",
            "--concurrency",
            "4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "JOBDASH_DATA_DIR": str(tmp_path)},
    )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "demo did not get going in 30 s"
            (succeeded,) = query_one(
                database_url, "select count(*) from procrastinate_jobs where status = 'succeeded'"
            )
            (errors,) = query_one(database_url, "select count(*) from jobdash_job_errors")
            (workers,) = query_one(database_url, "select count(*) from jobdash_workers")
            if succeeded >= 3 and errors >= 1 and workers == 1 and _dashboard_up(port):
                break
            time.sleep(0.2)
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 2  # worker and dashboard

        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for child in children:
            if child.is_running():
                child.kill()
    output = process.stdout.read()
    assert f"http://127.0.0.1:{port}" in output
    assert "jobdash demo: stopped" in output
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not _dashboard_up(port)
    (stopped,) = query_one(database_url, "select stopped_at is not null from jobdash_workers")
    assert stopped
    assert (tmp_path / "demo.log").exists()
