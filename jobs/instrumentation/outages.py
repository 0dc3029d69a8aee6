"""Riding out database outages: when to restart a stopped Procrastinate worker, when to give up.

Procrastinate 3.10's `Worker.run()` ends for good when one of its side tasks fails (its
listener when it tries to reconnect while the database is down, its heartbeat or periodic
deferrer on any database error) or when fetching a job fails once the pool gave up waiting
for a connection. Nothing in its public API restarts it, so the InstrumentedWorker runs
`Worker.run()` again, with backoff, while a `FailureStreak` allows it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from procrastinate import exceptions as procrastinate_exceptions
from procrastinate import worker as worker_module

from jobdash.core.errors import describe_error

FIRST_RETRY_S = 1.0
MAX_RETRY_S = 30.0
# A run that worked this long ends a streak of failures: the next failure starts a new one.
HEALTHY_RUN_S = 60.0
# A pool slot that cannot connect for this long is replaced by a fresh attempt (see pool_options).
RECONNECT_ATTEMPT_S = 5.0


def retry_delay(failures: int) -> float:
    """Seconds to wait before restart number `failures` (1, 2, 4, ... up to MAX_RETRY_S)."""
    return min(MAX_RETRY_S, FIRST_RETRY_S * 2.0 ** max(0, failures - 1))


def failure_reason(exc: BaseException | None) -> str:
    """One line: Procrastinate wraps database errors in a ConnectorException whose own text is
    "Database error.", so the psycopg error it was raised from says more."""
    if exc is None:
        return "it stopped without saying why"
    if isinstance(exc, procrastinate_exceptions.ConnectorException) and exc.__cause__:
        exc = exc.__cause__
    return describe_error(exc)


@dataclass
class FailureStreak:
    """Consecutive failed runs of one worker, and whether `tolerance_s` has run out."""

    tolerance_s: float
    started_at: float | None = None
    failures: int = 0
    reason: str = ""
    # Whether the last probe of this streak found the database answering.
    database_answered: bool = False

    def run_failed(self, run_started_at: float, failed_at: float, reason: str) -> None:
        if self.started_at is None or failed_at - run_started_at >= HEALTHY_RUN_S:
            self.started_at, self.failures, self.database_answered = failed_at, 0, False
        self.failures += 1
        self.reason = reason

    def probed(self, answered: bool, reason: str = "") -> None:
        self.database_answered = answered
        if not answered:
            self.reason = reason

    def elapsed(self, now: float) -> float:
        return 0.0 if self.started_at is None else now - self.started_at

    def exhausted(self, now: float) -> bool:
        return self.elapsed(now) >= self.tolerance_s

    def next_delay(self, now: float) -> float:
        """The backoff, cut so that the last probe happens when the tolerance runs out."""
        remaining = max(0.0, self.tolerance_s - self.elapsed(now))
        return min(retry_delay(self.failures), remaining)

    def give_up_message(self, now: float) -> str:
        what = (
            "the worker kept stopping" if self.database_answered else "the database was unreachable"
        )
        return f"{what} for {self.elapsed(now):.0f} s, giving up: {self.reason}"


class SideTaskFailureWatch(logging.Handler):
    """When, and with what exception, a Worker's side task failed.

    Procrastinate 3.10 has no public hook for it: it logs an ERROR record whose `extra` says
    action="side_task_failed", stops, and the run then ends without an error. Without that
    record (its logger silenced), the run's end stands in for the failure and the reason is
    unknown. Install with `with watch:` around one run of `worker`."""

    LOGGER = "procrastinate.worker"

    def __init__(self, worker: worker_module.Worker) -> None:
        super().__init__(level=logging.ERROR)
        self.worker = worker
        self.failed_at: float | None = None
        self.error: BaseException | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "action", None) != "side_task_failed" or self.failed_at is not None:
            return
        worker_info: Any = getattr(record, "worker", None) or {}
        if worker_info.get("worker_id") != self.worker.worker_id:
            return  # another worker of the same process
        self.failed_at = time.monotonic()
        self.error = record.exc_info[1] if record.exc_info else None

    def __enter__(self) -> SideTaskFailureWatch:
        logging.getLogger(self.LOGGER).addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger(self.LOGGER).removeHandler(self)


async def _replace_lost_connections(pool: Any) -> None:
    # `check()` grows the pool again when a slot gave up reconnecting (psycopg_pool 3.2+).
    await pool.check()


def pool_options(outage_tolerance_s: float) -> dict[str, Any]:
    """psycopg_pool options (for `PsycopgConnector(**...)`) for a worker that rides out outages.

    - `timeout`: a query waits for a connection as long as the worker tolerates an outage, so
      a job whose body finished while the database was down gets its status saved when it is
      back (Procrastinate 3.10 does not retry that write: with the default 30 s the job stays
      `doing` and a stalled-job retry would run it twice).
    - `reconnect_timeout` + `reconnect_failed`: psycopg_pool doubles the delay between
      reconnection attempts without bound (after a 35 s outage it reconnected 29 s late);
      a slot that failed for RECONNECT_ATTEMPT_S is replaced by a fresh one, so the pool
      reconnects within seconds of the database answering.
    """
    return {
        "timeout": outage_tolerance_s,
        "reconnect_timeout": RECONNECT_ATTEMPT_S,
        "reconnect_failed": _replace_lost_connections,
    }
