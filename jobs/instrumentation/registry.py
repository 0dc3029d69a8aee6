"""The worker registry: host metrics of a running worker in `jobdash_workers`.

Procrastinate has no heartbeat hook, so `WorkerRegistry.run(worker_task)` is a companion
coroutine started next to `Worker.run()`: it waits until the worker has registered (its
`worker_id` is set), upserts a row, repeats every interval, and marks the row stopped when
the worker's task ends. It only reads public attributes of the Worker. It never stops the
worker: a write that fails or takes longer than WRITE_TIMEOUT_S is logged (at most once a
minute) and tried again at the next heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import socket
from collections.abc import Iterable
from importlib import metadata
from typing import Any

import psutil
from procrastinate import connector as connector_module
from procrastinate import worker as worker_module

from jobdash.jobs.instrumentation import queries
from jobdash.jobs.instrumentation.log_throttle import warn_throttled

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_INTERVAL_S = 10.0
# How often to look whether the worker has registered yet; a cheap attribute read.
_WORKER_ID_POLL_S = 0.05
OLD_WORKER_ROWS_DAYS = 7
# A write stuck behind a lock or a slow trigger is cancelled (psycopg cancels it on the server).
WRITE_TIMEOUT_S = 10.0


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("procrastinate", "jobdash"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def queue_list(queues: Iterable[str] | None) -> list[str] | None:
    """None means "every queue", as in Procrastinate."""
    return None if queues is None else sorted(set(queues))


class ProcessMetrics:
    """CPU % of this process since the previous call (psutil's interval=None) and RSS."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._process.cpu_percent(interval=None)  # primes the counter; the first value is 0

    def sample(self) -> tuple[float, float]:
        cpu = self._process.cpu_percent(interval=None)
        rss_mb = self._process.memory_info().rss / (1024 * 1024)
        return round(cpu, 1), round(rss_mb, 1)


def worker_row(
    worker: worker_module.Worker, cpu_percent: float, memory_mb: float, versions: dict[str, str]
) -> dict[str, Any]:
    return {
        "worker_id": worker.worker_id,
        "worker_name": worker.worker_name,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "queues": queue_list(worker.queues),
        "concurrency": worker.concurrency,
        "cpu_percent": cpu_percent,
        "memory_mb": memory_mb,
        "versions": versions,
    }


class WorkerRegistry:
    def __init__(
        self,
        worker: worker_module.Worker,
        connector: connector_module.BaseConnector | None = None,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL_S,
        extra_versions: dict[str, str] | None = None,
    ) -> None:
        self.worker = worker
        self.connector = connector or worker.app.connector
        self.heartbeat_interval = heartbeat_interval
        self.worker_id: int | None = None
        self._metrics = ProcessMetrics()
        # Also what the worker can do (the instrumented worker: pauses and disables).
        self._versions = library_versions() | (extra_versions or {})

    async def run(self, worker_task: asyncio.Future[Any]) -> None:
        """Publish until `worker_task` (the task running `Worker.run()`) is done."""
        while self.worker.worker_id is None:
            if worker_task.done():
                return
            await asyncio.sleep(_WORKER_ID_POLL_S)
        self.worker_id = self.worker.worker_id
        await self._execute(queries.PRUNE_OLD_WORKERS, days=OLD_WORKER_ROWS_DAYS)
        while not worker_task.done():
            await self.publish()
            await asyncio.wait({worker_task}, timeout=self.heartbeat_interval)

    async def publish(self) -> None:
        if self.worker.worker_id is None:  # stopping: Procrastinate unregistered it
            return
        try:
            cpu, rss = self._metrics.sample()
            row = worker_row(self.worker, cpu, rss, self._versions)
        except Exception:
            warn_throttled(logger, "worker_metrics", "jobdash: could not sample worker metrics")
            return
        await self._execute(queries.UPSERT_WORKER, **row)

    async def mark_stopped(self) -> None:
        if self.worker_id is not None:
            await self._execute(queries.MARK_WORKER_STOPPED, worker_id=self.worker_id)

    async def _execute(self, query: str, **params: Any) -> None:
        try:
            await asyncio.wait_for(
                self.connector.execute_query_async(query, **params),
                WRITE_TIMEOUT_S,
            )
        except Exception:
            warn_throttled(logger, "worker_registry", "jobdash: worker registry update failed")
