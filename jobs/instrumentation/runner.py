"""An instrumented Procrastinate worker: error middleware + worker registry + schedules +
Jobdash's maintenance tasks, around an unmodified `procrastinate.worker.Worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

from procrastinate import App
from procrastinate import worker as worker_module

from jobdash.core.errors import WorkerGaveUp
from jobdash.core.settings import load_settings
from jobdash.jobs.instrumentation import controls, outages
from jobdash.jobs.instrumentation.log_throttle import warn_throttled
from jobdash.jobs.instrumentation.middleware import record_job_errors
from jobdash.jobs.instrumentation.registry import WorkerRegistry
from jobdash.jobs.instrumentation.schedules import publish_periodic_tasks
from jobdash.jobs.instrumentation.stop_signals import stop_on_signals

logger = logging.getLogger(__name__)

MAINTENANCE_NAMESPACE = "jobdash"
# How long a probe of the database between restarts, and publishing the schedules, may take.
PROBE_S = 5.0
PUBLISH_TIMEOUT_S = 30.0


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
    (the App must be open); `stop()` asks it to finish its jobs and stop.

    When Procrastinate's Worker stops without being asked (a side task failed: the database
    went away, a heartbeat write failed), it is run again, with backoff, until it has not been
    able to work for `outage_tolerance_s` (JOBDASH_WORKER_OUTAGE_TOLERANCE_S); then
    `run_async()` raises WorkerGaveUp. A fresh `procrastinate.worker.Worker` serves each run."""

    def __init__(
        self,
        app: App,
        *,
        queues: Iterable[str] | None = None,
        heartbeat_interval: float | None = None,
        with_maintenance: bool = True,
        outage_tolerance_s: float | None = None,
        **worker_options: Any,
    ) -> None:
        self.app = app
        app.perform_import_paths()
        maintenance_queue = add_maintenance_tasks(app) if with_maintenance else None
        options: dict[str, Any] = {**app.worker_defaults, **worker_options}
        middleware = [record_job_errors, *(options.pop("worker_middleware", None) or [])]
        # Our handlers span every run; Procrastinate's would exist only during one.
        self._handle_signals = bool(options.pop("install_signal_handlers", True))
        self._worker_options: dict[str, Any] = {
            **options,
            "queues": worker_queues(queues, maintenance_queue),
            "worker_middleware": middleware,
            "install_signal_handlers": False,
        }
        self._heartbeat_interval = heartbeat_interval
        self.outage_tolerance_s = (
            outage_tolerance_s
            if outage_tolerance_s is not None
            else load_settings().worker_outage_tolerance_s
        )
        self._stop_requested = False
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new_run()

    def _new_run(self) -> None:
        self.worker = worker_module.Worker(app=self.app, **self._worker_options)
        self.registry = WorkerRegistry(
            self.worker,
            self.app.connector,
            self._heartbeat_interval or self.worker.update_heartbeat_interval,
            extra_versions={controls.CAPABILITY_KEY: controls.CAPABILITY},
        )

    def stop(self) -> None:
        """Finish the running jobs and stop (also between restarts). Any thread."""
        self._stop_requested = True
        self.worker.stop()
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                event.set()
            else:
                loop.call_soon_threadsafe(event.set)

    async def run_async(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._stop_requested = False
        signals = stop_on_signals(self.stop) if self._handle_signals else contextlib.nullcontext()
        self._controls = controls.install(self.app)
        try:
            with signals:
                await self._supervise()
        finally:
            controls.uninstall(self.app)
            self._loop = self._stop_event = None

    async def _supervise(self) -> None:
        streak = outages.FailureStreak(self.outage_tolerance_s)
        while True:
            run = await self._run_once()
            if self._stop_requested:
                if run.error is not None:
                    logger.warning(
                        "jobdash: worker stopped on request; its last step failed: %s",
                        outages.failure_reason(run.error),
                    )
                return
            if run.error is None and not self.worker.wait:
                return  # wait=False: the queues are empty
            streak.run_failed(run.started_at, run.failed_at, outages.failure_reason(run.error))
            logger.warning(
                "jobdash: the Procrastinate worker stopped (%s); restarting it when the "
                "database answers (restart %d, giving up %.0f s after the first)",
                streak.reason,
                streak.failures,
                self.outage_tolerance_s,
            )
            if not await self._wait_until_restartable(streak):
                return
            self._new_run()

    async def _wait_until_restartable(self, streak: outages.FailureStreak) -> bool:
        """True to run again, False when asked to stop; WorkerGaveUp when out of tolerance."""
        while True:
            now = time.monotonic()
            if streak.database_answered and streak.exhausted(now):
                raise WorkerGaveUp(streak.give_up_message(now))
            if await self._stop_requested_within(streak.next_delay(now)):
                return False
            try:
                await asyncio.wait_for(self.app.job_manager.check_connection_async(), PROBE_S)
            except Exception as exc:
                cause = "no answer" if isinstance(exc, TimeoutError) else None
                streak.probed(False, cause or outages.failure_reason(exc))
                if streak.exhausted(time.monotonic()):
                    raise WorkerGaveUp(streak.give_up_message(time.monotonic())) from None
                continue
            streak.probed(True)
            return not self._stop_requested

    async def _stop_requested_within(self, seconds: float) -> bool:
        assert self._stop_event is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), timeout=seconds)
        return self._stop_requested

    async def _run_once(self) -> _Run:
        """One `Worker.run()`, with our registry beside it and schedules published first."""
        started_at = time.monotonic()
        await _quietly(publish_periodic_tasks(self.app), PUBLISH_TIMEOUT_S, "publishing schedules")
        # Paused queues and disabled tasks are known before the first fetch.
        watcher = controls.ControlsWatcher(
            self.app, self._controls, self.worker.fetch_job_polling_interval
        )
        await watcher.refresh()
        error: BaseException | None = None
        with outages.SideTaskFailureWatch(self.worker) as watch:
            worker_task = asyncio.create_task(self.worker.run(), name="procrastinate worker")
            registry_task = asyncio.create_task(
                self.registry.run(worker_task), name="jobdash worker registry"
            )
            controls_task = asyncio.create_task(
                watcher.run(worker_task), name="jobdash worker controls"
            )
            await asyncio.sleep(0)  # Worker.run() forgets stop requests made before it starts
            if self._stop_requested:
                self.worker.stop()
            try:
                # Cancelling us cancels the worker task, which then shuts down gracefully.
                await worker_task
            except Exception as exc:
                error = exc
            finally:
                await _finish(controls_task)
                await _finish(registry_task)
                await self.registry.mark_stopped()
        failed_at = watch.failed_at or time.monotonic()
        return _Run(started_at, failed_at, error or watch.error)


@dataclass(frozen=True)
class _Run:
    started_at: float
    failed_at: float  # when it began to fail (a side task failed) or ended
    error: BaseException | None


async def _quietly(awaitable: Awaitable[Any], timeout: float, what: str) -> None:
    """Our own writes never hold the worker up: a slow one is cancelled (psycopg cancels the
    query on the server); a failed one was logged where it failed."""
    try:
        await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        warn_throttled(logger, what, "jobdash: %s took longer than %s s, skipped", what, timeout)


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
    Takes the same options (queues, concurrency, name, wait, ...) plus `heartbeat_interval`,
    `with_maintenance` and `outage_tolerance_s`. Raises WorkerGaveUp when the worker could not
    work for longer than the outage tolerance."""
    await InstrumentedWorker(app, **options).run_async()


def run_instrumented_worker(app: App, **options: Any) -> None:
    """`App.run_worker`, instrumented: opens the App, runs until Ctrl-C / SIGTERM."""

    async def main() -> None:
        async with app.open_async():
            await run_instrumented_worker_async(app, **options)

    asyncio.run(main())
