"""Helpers (no tests): a real instrumented worker on the test database, until a condition holds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from procrastinate import App, PsycopgConnector

from jobdash.jobs.instrumentation import InstrumentedWorker

POLL_S = 0.05
T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on a thread of its own: in a pytest worker that already ran browser
    tests, Playwright's sync API keeps an event loop running in the main thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def make_app(database_url: str) -> App:
    return App(connector=PsycopgConnector(conninfo=database_url, min_size=1, max_size=4))


def query_one(database_url: str, sql: str, params: tuple = ()) -> Any:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    return row


def query_all(database_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


async def poll_until(
    condition: Callable[[], bool], timeout: float, task: asyncio.Task | None = None
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(condition):
        if task is not None and task.done():
            await task  # surfaces the worker's exception
            raise AssertionError("worker stopped before the condition held")
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(POLL_S)


def run_worker_until(
    app: App,
    condition: Callable[[], bool],
    *,
    timeout: float = 20,
    after_start: Callable[[InstrumentedWorker], Awaitable[None]] | None = None,
    **options: Any,
) -> InstrumentedWorker:
    """Run an instrumented worker until `condition()` is true, then stop it cleanly."""
    options.setdefault("with_maintenance", False)
    options.setdefault("install_signal_handlers", False)
    options.setdefault("fetch_job_polling_interval", 0.2)

    async def main() -> InstrumentedWorker:
        async with app.open_async():
            worker = InstrumentedWorker(app, **options)
            task = asyncio.create_task(worker.run_async())
            try:
                await poll_until(condition, timeout, task)
                if after_start is not None:
                    await after_start(worker)
            finally:
                worker.stop()
                await asyncio.wait_for(task, timeout=10)
        return worker

    return run_async(main())


def job_state(database_url: str, job_id: int) -> tuple[str, int]:
    status, attempts = query_one(
        database_url,
        "select status::text, attempts from procrastinate_jobs where id = %s",
        (job_id,),
    )
    return status, attempts


def job_finished(database_url: str, job_id: int) -> Callable[[], bool]:
    return lambda: job_state(database_url, job_id)[0] in {"succeeded", "failed"}


def all_finished(database_url: str, job_ids: list[int]) -> Callable[[], bool]:
    def condition() -> bool:
        (unfinished,) = query_one(
            database_url,
            "select count(*) from procrastinate_jobs where id = any(%s) "
            "and status not in ('succeeded', 'failed')",
            (job_ids,),
        )
        return unfinished == 0

    return condition


def defer(app: App, task_name: str, **kwargs: Any) -> int:
    """Defer one job through the App's synchronous path (as a web request would)."""
    with app.open():
        return app.configure_task(task_name).defer(**kwargs)
