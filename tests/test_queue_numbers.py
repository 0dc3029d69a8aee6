"""Queue numbers an operator can trust, against crafted jobs with answers worked out here:
latency as the longest wait of a ready job, counts capped through indexes with estimates past
the cap, the last hour from the rollup plus the events since (counted once), stalled jobs."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from jobdash.app.read import dashboard
from jobdash.app.read.dashboard import load_queue_stats, load_worker_health
from jobdash.jobs.maintenance import rollup
from jobdash.jobs.maintenance.rollup import run_rollup
from tests.loader_helpers import add_worker, db_now, defer, set_event_age, set_status


def latency(conn: psycopg.Connection, queue: str = "default") -> float:
    row = next(q for q in load_queue_stats(conn).queues if q.name == queue)
    assert row.oldest_ready_age_s is not None
    return row.oldest_ready_age_s


def test_a_job_scheduled_for_5_minutes_ago_has_waited_5_minutes(conn) -> None:
    job = defer(conn, scheduled_at=db_now(conn) - timedelta(minutes=5))
    set_event_age(conn, job, "deferred", 30 * 60)  # deferred long before it was due
    assert latency(conn) == pytest.approx(300, abs=5)


def test_a_job_retried_a_minute_ago_has_waited_a_minute(conn) -> None:
    job = defer(conn)
    set_event_age(conn, job, "deferred", 30 * 60)
    set_status(conn, job, "doing")
    set_status(conn, job, "failed")
    # Procrastinate's own retry, to run now (retry_at = now() sets scheduled_at).
    conn.execute("select procrastinate_retry_job_v2(%s, now(), null, null, null)", (job,))
    set_event_age(conn, job, "retried", 60)
    conn.execute(
        "update procrastinate_jobs set scheduled_at = now() - interval '60 seconds' where id = %s",
        (job,),
    )
    assert latency(conn) == pytest.approx(60, abs=5)


def test_latency_is_the_longest_wait_whatever_the_priority(conn) -> None:
    # Procrastinate fetches by priority then id: the next job to run is not the one that has
    # waited longest.
    waited_long = defer(conn)
    set_event_age(conn, waited_long, "deferred", 10 * 60)
    urgent = defer(conn)
    conn.execute("update procrastinate_jobs set priority = 100 where id = %s", (urgent,))
    set_event_age(conn, urgent, "deferred", 60)
    assert latency(conn) == pytest.approx(600, abs=5)


def test_a_job_deferred_after_its_scheduled_time_waited_only_since_its_deferral(conn) -> None:
    late = defer(conn, scheduled_at=db_now(conn) - timedelta(hours=2))
    set_event_age(conn, late, "deferred", 120)  # deferred 2 min ago for 2 h ago
    on_time = defer(conn, scheduled_at=db_now(conn) - timedelta(minutes=10))
    set_event_age(conn, on_time, "deferred", 20 * 60)
    assert latency(conn) == pytest.approx(600, abs=5)  # on_time: since its scheduled_at


def test_an_empty_queue_has_no_latency(conn) -> None:
    job = defer(conn)
    set_status(conn, job, "doing")
    row = load_queue_stats(conn).queues[0]
    assert (row.ready, row.doing, row.oldest_ready_age_s) == (0, 1, None)


def test_counts_past_the_cap_are_lower_bounds_with_the_sample_as_estimate(conn, monkeypatch):
    monkeypatch.setattr(dashboard, "COUNT_CAP", 5)
    first = defer(conn, queue="big")
    set_event_age(conn, first, "deferred", 300)
    for _ in range(7):
        defer(conn, queue="big")
    defer(conn, queue="small")  # the newest: past the oldest five
    rows = {q.name: q for q in load_queue_stats(conn).queues}
    big, small = rows["big"], rows["small"]
    assert (big.ready, big.capped, big.ready_estimate) == (6, True, None)  # cap + 1
    assert (small.ready, small.capped) == (0, True)
    # The longest wait is among the oldest jobs: right even past the cap.
    assert big.oldest_ready_age_s == pytest.approx(300, abs=5)
    run_rollup(conn)  # its minute sample counts further (up to its own, larger cap)
    rows = {q.name: q for q in load_queue_stats(conn).queues}
    assert rows["big"].capped and rows["big"].ready_estimate == 8
    assert rows["small"].ready_estimate == 1 and rows["big"].estimated_at is not None


def test_a_capped_minute_sample_is_no_estimate(conn, monkeypatch):
    monkeypatch.setattr(dashboard, "COUNT_CAP", 2)
    monkeypatch.setattr(rollup, "SAMPLE_CAP", 3)
    for _ in range(4):
        defer(conn, queue="big")
    run_rollup(conn)
    big = load_queue_stats(conn).queues[0]
    assert (big.ready, big.capped, big.ready_estimate) == (3, True, None)
    capped = conn.execute("select capped from jobdash_queue_depth_minute").fetchall()
    assert capped == [(True,)]


def test_the_last_hour_counts_each_finish_once_across_the_rollup(conn) -> None:
    for _ in range(3):
        job = defer(conn)
        set_status(conn, job, "doing")
        set_status(conn, job, "succeeded")
    before = load_queue_stats(conn)
    assert (before.successful_jobs, before.window_source) == (3, "raw events")
    run_rollup(conn)
    job = defer(conn)
    set_status(conn, job, "doing")
    set_status(conn, job, "failed")
    after = load_queue_stats(conn)
    assert (after.successful_jobs, after.failed_jobs, after.window_source) == (3, 1, "history")


def test_stalled_jobs_are_those_of_unhealthy_or_vanished_workers(conn) -> None:
    live = add_worker(conn, heartbeat_ago_s=3)
    dead = add_worker(conn, heartbeat_ago_s=3600)
    running, stuck, orphan = defer(conn), defer(conn), defer(conn)
    set_status(conn, running, "doing", worker_id=live)
    set_status(conn, stuck, "doing", worker_id=dead)
    set_status(conn, orphan, "doing")  # its worker row was pruned: worker_id NULL
    health = load_worker_health(conn)
    assert (health.jobs_in_progress, health.stalled_jobs) == (3, 2)
    assert sorted(j.id for j in health.stalled) == sorted([stuck, orphan])
