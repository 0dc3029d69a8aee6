"""Worker registry, schedule publishing and maintenance tasks of the instrumented worker."""

from __future__ import annotations

import os
import socket

import pytest
from procrastinate import App

from jobdash.core.periodic import periodic_definitions
from jobdash.jobs.instrumentation import (
    InstrumentedWorker,
    add_maintenance_tasks,
    publish_periodic_tasks,
)
from jobdash.jobs.instrumentation.runner import worker_queues
from tests.test_instrumentation_support import (
    make_app,
    query_all,
    query_one,
    run_async,
    run_worker_until,
)

WORKER_COLUMNS = (
    "worker_id, worker_name, hostname, pid, queues, concurrency, cpu_percent, memory_mb,"
    " started_at, updated_at, stopped_at, versions"
)


def worker_rows(database_url: str) -> list[tuple]:
    return query_all(database_url, f"select {WORKER_COLUMNS} from jobdash_workers")


def test_worker_registry_publishes_host_metrics_and_marks_a_clean_stop(database_url):
    app = make_app(database_url)
    seen: dict[str, object] = {}

    def heartbeat_twice() -> bool:
        rows = query_all(
            database_url,
            "select w.updated_at > w.started_at, p.id is not null from jobdash_workers w"
            " left join procrastinate_workers p on p.id = w.worker_id",
        )
        return bool(rows) and rows[0][0] and rows[0][1]

    async def capture(worker: InstrumentedWorker) -> None:
        seen["worker_id"] = worker.worker.worker_id
        seen["row"] = worker_rows(database_url)[0]

    run_worker_until(
        app,
        heartbeat_twice,
        after_start=capture,
        queues=["emails", "billing"],
        concurrency=3,
        name="mailer",
        heartbeat_interval=0.1,
    )

    (
        worker_id,
        name,
        hostname,
        pid,
        queues,
        concurrency,
        cpu,
        memory,
        started,
        updated,
        stopped,
        versions,
    ) = seen["row"]
    assert worker_id == seen["worker_id"]
    assert name == "mailer"
    assert hostname == socket.gethostname()
    assert pid == os.getpid()
    assert queues == ["billing", "emails"]
    assert concurrency == 3
    assert cpu is not None and cpu >= 0
    assert memory is not None and memory > 10
    assert started.tzinfo is not None and updated > started
    assert stopped is None
    assert set(versions) == {"python", "procrastinate", "jobdash", "jobdash_controls"}
    assert versions["jobdash_controls"] == "queue-pause,periodic-disable"  # it honours pauses
    assert versions["procrastinate"].startswith("3.")

    ((stopped_at, still_registered),) = query_all(
        database_url,
        "select w.stopped_at,"
        " exists (select 1 from procrastinate_workers p where p.id = w.worker_id)"
        " from jobdash_workers w",
    )
    assert stopped_at is not None and stopped_at >= updated
    assert still_registered is False  # Procrastinate unregistered it: a clean stop


def test_registry_failures_never_stop_the_worker(database_url, conn):
    conn.execute("drop table jobdash_workers")
    app = make_app(database_url)

    @app.task(name="ok")
    def ok() -> None:
        pass

    with app.open():
        job_id = app.tasks["ok"].defer()
    run_worker_until(
        app,
        lambda: (
            query_one(
                database_url, "select status::text from procrastinate_jobs where id = %s", (job_id,)
            )[0]
            == "succeeded"
        ),
        heartbeat_interval=0.05,
    )


def periodic_app(database_url: str) -> App:
    app = make_app(database_url)

    @app.periodic(cron="* * * * * */15")
    @app.task(name="tick", queue="reports")
    def tick(timestamp: int) -> None:
        pass

    @app.periodic(cron="0 3 * * *", periodic_id="nightly", task_kwargs={"region": "eu"}, priority=5)
    @app.periodic(cron="30 4 * * 1", periodic_id="weekly", queue="billing")
    @app.task(name="invoice")
    def invoice(timestamp: int, region: str = "all") -> None:
        pass

    return app


def test_periodic_definitions_are_read_from_the_registry(database_url):
    definitions = periodic_definitions(periodic_app(database_url))
    assert [(d.task_name, d.periodic_id, d.cron, d.queue) for d in definitions] == [
        ("invoice", "nightly", "0 3 * * *", "default"),
        ("invoice", "weekly", "30 4 * * 1", "billing"),
        ("tick", "", "* * * * * */15", "reports"),
    ]
    assert definitions[0].configured_kwargs == {"task_kwargs": {"region": "eu"}, "priority": 5}


def test_schedules_are_published_at_worker_start_and_stale_ones_of_known_tasks_removed(
    database_url, conn
):
    conn.execute(
        "insert into jobdash_periodic_tasks"
        " (task_name, periodic_id, cron, queue_name, published_by)"
        " values ('invoice', 'monthly', '0 0 1 * *', 'default', 'old:1'),"
        " ('other.app.task', '', '* * * * *', 'default', 'elsewhere:2')"
    )
    app = periodic_app(database_url)

    run_worker_until(
        app,
        lambda: query_one(database_url, "select count(*) from jobdash_workers")[0] == 1,
    )

    rows = query_all(
        database_url,
        "select task_name, periodic_id, cron, queue_name, configured_kwargs, published_by,"
        " published_at <= now() from jobdash_periodic_tasks order by 1, 2",
    )
    publisher = f"{socket.gethostname()}:{os.getpid()}"
    assert rows == [
        (
            "invoice",
            "nightly",
            "0 3 * * *",
            "default",
            {"task_kwargs": {"region": "eu"}, "priority": 5},
            publisher,
            True,
        ),
        ("invoice", "weekly", "30 4 * * 1", "billing", {"queue": "billing"}, publisher, True),
        ("other.app.task", "", "* * * * *", "default", {}, "elsewhere:2", True),
        ("tick", "", "* * * * * */15", "reports", {}, publisher, True),
    ]


def test_publishing_without_the_table_is_logged_not_raised(database_url, conn):
    conn.execute("drop table jobdash_periodic_tasks")
    app = periodic_app(database_url)

    async def main() -> int:
        async with app.open_async():
            return await publish_periodic_tasks(app)

    assert run_async(main()) == 0


def test_maintenance_tasks_join_the_app_once_and_their_queue_is_listened_to(database_url):
    pytest.importorskip("jobdash.jobs.maintenance.task")
    app = make_app(database_url)
    queue = add_maintenance_tasks(app)
    assert queue is not None
    assert add_maintenance_tasks(app) == queue  # idempotent
    assert any(name.startswith("jobdash:") for name in app.tasks)
    assert any(key[0].startswith("jobdash:") for key in app.periodic_registry.periodic_tasks)

    other = make_app(database_url)  # a second App gets its own copy
    assert add_maintenance_tasks(other) == queue
    names = [name for name in other.tasks if name.startswith("jobdash:")]
    assert names and not any(name.startswith("jobdash:jobdash:") for name in names)

    worker = InstrumentedWorker(make_app(database_url), queues=["emails"])
    assert worker.worker.queues == ["emails", queue]
    assert InstrumentedWorker(make_app(database_url)).worker.queues is None


def test_worker_queues_rule():
    assert worker_queues(None, "jobdash") is None
    assert worker_queues(["a", "b", "a", ""], "jobdash") == ["a", "b", "jobdash"]
    assert worker_queues(["jobdash"], "jobdash") == ["jobdash"]
    assert worker_queues(["a"], None) == ["a"]
