"""Paused queues and disabled periodic tasks, honoured by the instrumented worker.

Procrastinate's Worker fetches through `app.job_manager.fetch_job(queues=…, worker_id=…)`, and
its periodic deferrer defers through `defer_periodic_job(job=…, periodic_id=…,
defer_timestamp=…)` of the task's job manager — the same JobManager object, the App's. Both are
public methods; `install(app)` wraps them on that one instance (counted per App, undone when
the last instrumented worker of the App stops), and nothing else of Procrastinate changes:

- `fetch_job` gets the worker's queues minus the paused ones. A worker listening to every queue
  gets the queues there are, minus the paused ones (procrastinate_fetch_job_v2
  takes an allow-list only); a queue whose first job comes after the last refresh waits for
  the next one. No queue left: no fetch at all.
- `defer_periodic_job` of a disabled task returns None, what Procrastinate returns for a tick
  already deferred: the deferrer goes on to the next tick, so enabling the task again does not
  make up the ticks it skipped.

`ControlsWatcher` reads what is paused and disabled (one small query; the waiting queues only
while something is paused) before the worker starts and then every poll interval
(`fetch_job_polling_interval`), so a pause takes effect within one poll interval and a job of
a paused queue never starts once it has been read. Jobs already running finish. A failed read
keeps what was read last (logged at most once a minute); the worker never stops for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from procrastinate import App, manager

from jobdash.jobs.instrumentation import queries
from jobdash.jobs.instrumentation.log_throttle import warn_throttled

logger = logging.getLogger(__name__)

# What an instrumented worker publishes in jobdash_workers.versions: the dashboard tells the
# workers that honour pauses and disables from those that cannot.
CAPABILITY_KEY = "jobdash_controls"
CAPABILITY = "queue-pause,periodic-disable"
READ_TIMEOUT_S = 5.0
KEY_SEPARATOR = chr(31)


@dataclass
class ControlState:
    """What the last read found (shared by every worker of one App)."""

    paused: frozenset[str] = frozenset()
    waiting_queues: frozenset[str] = frozenset()  # every queue with jobs (only while paused)
    disabled: frozenset[tuple[str, str]] = frozenset()

    def allowed_queues(self, queues: Iterable[str] | None) -> list[str] | None:
        """The queues to fetch from: None (every queue) when nothing is paused."""
        if not self.paused:
            return None if queues is None else list(queues)
        candidates = self.waiting_queues if queues is None else queues
        return sorted(q for q in candidates if q not in self.paused)

    def is_disabled(self, task_name: str, periodic_id: str) -> bool:
        return (task_name, periodic_id or "") in self.disabled


@dataclass
class _Installed:
    manager: manager.JobManager
    state: ControlState = field(default_factory=ControlState)
    users: int = 0


_INSTALLED: dict[int, _Installed] = {}


def install(app: App) -> ControlState:
    """Wrap the App's job manager (once per App however many workers); returns the shared
    state the wrappers consult. Pair every call with `uninstall(app)`."""
    job_manager = app.job_manager
    entry = _INSTALLED.get(id(job_manager))
    if entry is None:
        entry = _Installed(job_manager)
        _INSTALLED[id(job_manager)] = entry
        _wrap(job_manager, entry.state)
    entry.users += 1
    return entry.state


def uninstall(app: App) -> None:
    entry = _INSTALLED.get(id(app.job_manager))
    if entry is None:
        return
    entry.users -= 1
    if entry.users <= 0:
        del _INSTALLED[id(app.job_manager)]
        for name in ("fetch_job", "defer_periodic_job"):
            # Our wrappers are instance attributes: removing them brings back the methods.
            vars(entry.manager).pop(name, None)


def _wrap(job_manager: manager.JobManager, state: ControlState) -> None:
    fetch_job = job_manager.fetch_job
    defer_periodic_job = job_manager.defer_periodic_job

    async def fetch_unpaused(queues: Iterable[str] | None, worker_id: int) -> Any:
        allowed = state.allowed_queues(queues)
        if allowed is not None and not allowed:
            return None  # every queue it listens to is paused
        return await fetch_job(queues=allowed, worker_id=worker_id)

    async def defer_enabled(job: Any, periodic_id: str, defer_timestamp: int) -> int | None:
        if state.is_disabled(job.task_name, periodic_id):
            logger.debug(
                "jobdash: periodic task %s[%s] is disabled: tick %s skipped",
                job.task_name, periodic_id, defer_timestamp,
            )  # fmt: skip
            return None
        return await defer_periodic_job(
            job=job, periodic_id=periodic_id, defer_timestamp=defer_timestamp
        )

    # Instance attributes over the methods (removed again by _unwrap): mypy forbids assigning
    # to a method, which is the point here.
    job_manager.fetch_job = fetch_unpaused  # type: ignore[method-assign]
    job_manager.defer_periodic_job = defer_enabled  # type: ignore[method-assign]


def _task_key(key: str) -> tuple[str, str]:
    """(task name, periodic id) from the key CONTROLS reads (the two joined by KEY_SEPARATOR)."""
    task_name, _, periodic_id = key.partition(KEY_SEPARATOR)
    return (task_name, periodic_id)


class ControlsWatcher:
    """Keeps `state` current for one worker: `refresh()` once, `run(worker_task)` beside it."""

    def __init__(self, app: App, state: ControlState, interval_s: float) -> None:
        self.app = app
        self.state = state
        self.interval_s = interval_s

    async def refresh(self) -> None:
        try:
            row = await asyncio.wait_for(
                self.app.connector.execute_query_one_async(queries.CONTROLS), READ_TIMEOUT_S
            )
            paused = frozenset(row["paused"] or [])
            waiting: frozenset[str] = frozenset()
            if paused:
                found = await asyncio.wait_for(
                    self.app.connector.execute_query_one_async(queries.QUEUES_WITH_WAITING_JOBS),
                    READ_TIMEOUT_S,
                )
                waiting = frozenset(found["queues"] or [])
        except Exception:
            warn_throttled(
                logger, "controls", "jobdash: could not read paused queues and disabled tasks"
            )
            return
        disabled = frozenset(_task_key(key) for key in row["disabled"] or [])
        if paused != self.state.paused:
            logger.info("jobdash: paused queues: %s", ", ".join(sorted(paused)) or "none")
        self.state.waiting_queues = waiting
        self.state.disabled = disabled
        self.state.paused = paused

    async def run(self, worker_task: asyncio.Future[Any]) -> None:
        """Refresh every interval until `worker_task` is done."""
        while not worker_task.done():
            await asyncio.wait({worker_task}, timeout=self.interval_s)
            if not worker_task.done():
                await self.refresh()
