"""An instrumented Procrastinate worker: error middleware + worker registry + schedules +
Jobdash's maintenance tasks, around an unmodified `procrastinate.worker.Worker`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from procrastinate import App
from procrastinate import worker as worker_module

from jobdash.jobs.instrumentation.middleware import record_job_errors
from jobdash.jobs.instrumentation.registry import WorkerRegistry
from jobdash.jobs.instrumentation.schedules import publish_periodic_tasks

logger = logging.getLogger(__name__)

MAINTENANCE_NAMESPACE = "jobdash"


def add_maintenance_tasks(app: App) -> str | None:
    """Add Jobdash's own tasks (the per-minute rollup) to `app`; return their queue.

    Safe to call twice on the same App. Returns None when they cannot be added (logged)."""
    try:
        from jobdash.jobs.maintenance import task as maintenance
    except Exception:
        logger.warning("jobdash: maintenance tasks unavailable", exc_info=True)
        return None
    queue: str = maintenance.MAINTENANCE_QUEUE
    if any(name.startswith(f"{MAINTENANCE_NAMESPACE}:") for name in app.tasks):
        return queue
    # A blueprint can join a single App (add_tasks_from renames its tasks): a fresh one each time.
    factory = getattr(maintenance, "build_blueprint", None)
    blueprint = factory() if factory else maintenance.blueprint
    try:
        app.add_tasks_from(blueprint, namespace=MAINTENANCE_NAMESPACE)
    except Exception:
        logger.warning("jobdash: could not add the maintenance tasks", exc_info=True)
        return None
    return queue


def worker_queues(queues: Iterable[str] | None, extra_queue: str | None) -> list[str] | None:
    """The queues to listen on: None (all) stays None; a limited list gets `extra_queue`."""
    if queues is None:
        return None
    result = list(dict.fromkeys(q for q in queues if q))
    if extra_queue and extra_queue not in result:
        result.append(extra_queue)
    return result


class InstrumentedWorker:
    """A Procrastinate worker with Jobdash's instrumentation. `await run_async()` runs it
    (the App must be open); `stop()` asks it to finish its jobs and stop."""

    def __init__(
        self,
        app: App,
        *,
        queues: Iterable[str] | None = None,
        heartbeat_interval: float | None = None,
        with_maintenance: bool = True,
        **worker_options: Any,
    ) -> None:
        self.app = app
        app.perform_import_paths()
        maintenance_queue = add_maintenance_tasks(app) if with_maintenance else None
        options: dict[str, Any] = {**app.worker_defaults, **worker_options}
        middleware = [record_job_errors, *(options.pop("worker_middleware", None) or [])]
        self.worker = worker_module.Worker(
            app=app,
            queues=worker_queues(queues, maintenance_queue),
            worker_middleware=middleware,
            **options,
        )
        self.registry = WorkerRegistry(
            self.worker,
            app.connector,  # type: ignore[arg-type]
            heartbeat_interval or self.worker.update_heartbeat_interval,
        )

    def stop(self) -> None:
        self.worker.stop()

    async def run_async(self) -> None:
        await publish_periodic_tasks(self.app)
        worker_task = asyncio.create_task(self.worker.run(), name="procrastinate worker")
        registry_task = asyncio.create_task(
            self.registry.run(worker_task), name="jobdash worker registry"
        )
        try:
            # Cancelling us cancels the worker task, which then shuts down gracefully.
            await worker_task
        finally:
            await _finish(registry_task)
            await self.registry.mark_stopped()


async def _finish(task: asyncio.Task[Any]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        logger.warning("jobdash: worker registry failed", exc_info=True)


async def run_instrumented_worker_async(app: App, **options: Any) -> None:
    """`App.run_worker_async`, instrumented. The App must be open (`async with app.open_async()`).
    Takes the same options (queues, concurrency, name, wait, ...) plus `heartbeat_interval`
    and `with_maintenance`."""
    await InstrumentedWorker(app, **options).run_async()


def run_instrumented_worker(app: App, **options: Any) -> None:
    """`App.run_worker`, instrumented: opens the App, runs until Ctrl-C / SIGTERM."""

    async def main() -> None:
        async with app.open_async():
            await run_instrumented_worker_async(app, **options)

    asyncio.run(main())
