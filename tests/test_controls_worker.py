"""Pause, disable, abort, cancel, run now — against real instrumented Procrastinate workers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from procrastinate import App, JobContext

from jobdash.app.actions import controls, explorer
from jobdash.jobs.instrumentation import controls as worker_controls
from jobdash.jobs.instrumentation.schedules import publish_periodic_tasks
from tests.actions_helpers import as_operator
from tests.test_instrumentation_support import (
    all_finished,
    defer,
    make_app,
    poll_until,
    query_all,
    query_one,
    run_async,
    run_worker_until,
)

OPS = as_operator("ops")


def add_tasks(app: App) -> None:
    @app.task(name="quick")
    async def quick(n: int = 0) -> int:
        return n

    @app.task(name="sleepy_async")
    async def sleepy_async() -> None:
        await asyncio.sleep(60)

    @app.task(name="sleepy_sync", pass_context=True)
    def sleepy_sync(context: JobContext) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if context.should_abort():
                from procrastinate.exceptions import JobAborted

                raise JobAborted()
            time.sleep(0.05)

    @app.periodic(cron="* * * * * *", periodic_id="witness")
    @app.task(name="tick_witness")
    async def tick_witness(timestamp: int) -> int:
        return timestamp

    @app.periodic(cron="* * * * * *", periodic_id="")
    @app.task(name="tick_disabled", queue="ticks")
    async def tick_disabled(timestamp: int) -> int:
        return timestamp


@pytest.fixture
def app(database_url: str) -> App:
    app = make_app(database_url)
    add_tasks(app)
    return app


def started(database_url: str, job_ids: list[int]) -> int:
    (n,) = query_one(
        database_url,
        "select count(*) from procrastinate_events where job_id = any(%s) and type = 'started'",
        (job_ids,),
    )
    return n


def defer_in(app: App, queue: str, n: int) -> list[int]:
    with app.open():
        return [app.configure_task("quick", queue=queue).defer(n=i) for i in range(n)]


def test_paused_queue_starts_nothing_other_queues_run_and_resume_drains_it(app, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert controls.pause_queue(conn, "a", OPS).done
    # Deferred first, same priority: without the pause they would be fetched first.
    paused = defer_in(app, "a", 3)
    others = defer_in(app, "b", 3)

    run_worker_until(app, all_finished(database_url, others))

    assert started(database_url, paused) == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert controls.resume_queue(conn, "a", OPS).done
    run_worker_until(app, all_finished(database_url, paused))
    audit = query_all(database_url, "select action, actor, filter->>'queue' from jobdash_audit_log")
    assert audit == [("pause_queue", "ops", "a"), ("resume_queue", "ops", "a")]


def test_a_pause_takes_effect_within_one_poll_interval_for_a_worker_on_listed_queues(
    app, database_url
):
    seen: dict[str, list[int]] = {}

    async def pause_then_defer(worker) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            controls.pause_queue(conn, "a", OPS)
        # The worker reads pauses every poll interval (0.2 s here).
        await poll_until(lambda: "a" in worker._controls.paused, timeout=5)
        seen["a"] = [await app.configure_task("quick", queue="a").defer_async() for _ in "xy"]
        seen["b"] = [await app.configure_task("quick", queue="b").defer_async() for _ in "xy"]
        await poll_until(all_finished(database_url, seen["b"]), timeout=10)

    warmup = defer_in(app, "b", 1)
    run_worker_until(
        app, all_finished(database_url, warmup), after_start=pause_then_defer, queues=["a", "b"]
    )
    assert started(database_url, seen["a"]) == 0
    rows = query_all(database_url, "select versions->>'jobdash_controls' from jobdash_workers")
    assert rows == [("queue-pause,periodic-disable",)]


def test_worker_on_paused_queues_only_does_not_fetch(app, database_url):
    assert worker_controls.ControlState(frozenset({"a"})).allowed_queues(["a"]) == []
    state = worker_controls.ControlState(frozenset({"a"}), frozenset({"a", "b"}))
    assert state.allowed_queues(None) == ["b"]
    assert worker_controls.ControlState().allowed_queues(None) is None


def test_disabled_periodic_task_is_skipped_and_enabling_does_not_make_up_ticks(app, database_url):
    run_async(_publish(app))
    with psycopg.connect(database_url, autocommit=True) as conn:
        result = controls.disable_periodic(conn, "tick_disabled", OPS)
        assert result.done, result.reason

    def jobs_of(task: str) -> int:
        return query_one(
            database_url, "select count(*) from procrastinate_jobs where task_name = %s", (task,)
        )[0]

    run_worker_until(app, lambda: jobs_of("tick_witness") >= 2, with_maintenance=False)
    assert jobs_of("tick_disabled") == 0

    with psycopg.connect(database_url, autocommit=True) as conn:
        assert controls.enable_periodic(conn, "tick_disabled", OPS).done
    run_worker_until(app, lambda: jobs_of("tick_disabled") >= 1)
    # One tick (maybe two at a second's edge), not every second it was disabled.
    assert jobs_of("tick_disabled") <= 2


async def _publish(app: App) -> None:
    async with app.open_async():
        await publish_periodic_tasks(app)


def status(database_url: str, job_id: int) -> str:
    return query_one(
        database_url, "select status::text from procrastinate_jobs where id = %s", (job_id,)
    )[0]


@pytest.mark.parametrize("task", ["sleepy_async", "sleepy_sync"])
def test_abort_a_running_job(app, database_url, task):
    job_id = defer(app, task)

    async def abort_when_running(worker) -> None:
        def abort() -> None:
            with psycopg.connect(database_url, autocommit=True) as conn:
                result = explorer.abort_jobs(conn, [job_id], OPS)
                assert result.done == (job_id,)
                again = explorer.abort_jobs(conn, [job_id], OPS)
                # An async job may already have stopped (the worker hears the abort at once).
                assert again.skipped[job_id] in {
                    "abort already requested", "not running (now aborted)"
                }

        await asyncio.to_thread(abort)
        await poll_until(lambda: status(database_url, job_id) == "aborted", timeout=15)

    run_worker_until(
        app,
        lambda: status(database_url, job_id) == "doing",
        after_start=abort_when_running,
        abort_job_polling_interval=0.2,
    )
    assert status(database_url, job_id) == "aborted"


def test_cancelled_job_never_runs_and_run_now_runs_a_scheduled_job(app, database_url):
    with app.open():
        later = app.configure_task(
            "quick", schedule_at=datetime.now(UTC) + timedelta(hours=1)
        ).defer(n=1)
    cancelled = defer(app, "quick", n=2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert explorer.cancel_jobs(conn, [cancelled], OPS).done == (cancelled,)
        assert explorer.run_now(conn, [later], OPS).done == (later,)
    run_worker_until(app, all_finished(database_url, [later]))
    assert status(database_url, cancelled) == "cancelled"
    assert started(database_url, [cancelled]) == 0


def test_periodic_run_now_defers_with_its_kwargs_and_a_worker_runs_it(app, database_url):
    run_async(_publish(app))
    with psycopg.connect(database_url, autocommit=True) as conn:
        result = controls.run_periodic_now(conn, "tick_disabled", OPS)
    assert result.done and result.job_id
    queue, args = query_one(
        database_url, "select queue_name, args from procrastinate_jobs where id = %s",
        (result.job_id,),
    )  # fmt: skip
    assert queue == "ticks" and isinstance(args["timestamp"], int)
    run_worker_until(app, all_finished(database_url, [result.job_id]), queues=["ticks"])
    (details,) = query_one(
        database_url, "select details from jobdash_audit_log where action = 'run_now'"
    )
    assert details["manual"] is True
