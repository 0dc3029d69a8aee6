"""The worker middleware that records every failed attempt in `jobdash_job_errors`.

It writes through the App's own connector (`context.app.connector.execute_query_async`):
the row lands in the very database the job lives in, whatever connector the team uses,
and no extra connection or pool is opened per worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from procrastinate import exceptions as procrastinate_exceptions
from procrastinate import job_context, jobs, worker

from jobdash.jobs.instrumentation import queries
from jobdash.jobs.instrumentation.log_throttle import warn_throttled

logger = logging.getLogger(__name__)

MAX_TEXT_BYTES = 64 * 1024
# The job's outcome is saved only after its error row: a write stuck behind a lock (or a
# database too slow to answer) is cancelled after this long (psycopg cancels it on the server).
WRITE_TIMEOUT_S = 10.0


def qualified_name(exc: BaseException) -> str:
    """`builtins.ValueError`, `myapp.billing.PaymentDeclined`, ..."""
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def storable_text(text: str) -> str:
    """Text PostgreSQL accepts: NUL and lone surrogates become visible escapes."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _truncation_marker(dropped_bytes: int) -> str:
    return f"… [truncated {dropped_bytes} bytes]"


def truncate_head(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """Keep the start of `text` within `limit` UTF-8 bytes, saying how much was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    keep = max(0, limit - len(_truncation_marker(len(data)).encode()))
    head = data[:keep].decode("utf-8", "ignore")
    dropped = len(data) - len(head.encode("utf-8"))
    return head + _truncation_marker(dropped)


def truncate_middle(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """Keep both ends within `limit` bytes: a traceback's first frames and its final line
    (the exception itself) are what an operator reads."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    marker_room = len(("\n" + _truncation_marker(len(data)) + "\n").encode())
    budget = max(0, limit - marker_room)
    head = data[: budget // 2].decode("utf-8", "ignore")
    tail = data[len(data) - (budget - budget // 2) :].decode("utf-8", "ignore")
    dropped = len(data) - len(head.encode("utf-8")) - len(tail.encode("utf-8"))
    return f"{head}\n{_truncation_marker(dropped)}\n{tail}"


def exception_message(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not cost us the row
        message = f"<unprintable {type(exc).__name__}>"
    return message


def formatted_traceback(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(exc))
    except Exception:
        return f"<traceback unavailable for {type(exc).__name__}>"


def is_failure(exc: BaseException) -> bool:
    """Whether Procrastinate ends this attempt as failed (aborts and cancellations are not)."""
    return not isinstance(exc, procrastinate_exceptions.JobAborted | asyncio.CancelledError)


def will_retry(exc: BaseException, context: job_context.JobContext) -> bool:
    """Procrastinate's own decision (worker.Worker._process_job), asked of the same strategy."""
    task = context.app.tasks.get(context.job.task_name)
    if task is None:
        return False
    aborted = isinstance(exc, procrastinate_exceptions.JobAborted)
    if aborted and context.abort_reason() != job_context.AbortReason.SHUTDOWN:
        return False
    try:
        return task.get_retry_exception(exception=exc, job=context.job) is not None
    except Exception:
        # Procrastinate would crash on the same strategy; "no retry" is the honest guess.
        logger.exception("jobdash: retry strategy of %s raised", context.job.task_name)
        return False


@dataclass(frozen=True)
class JobErrorRecord:
    job_id: int
    attempt: int
    exception_type: str
    message: str
    traceback: str
    worker_id: int | None
    hostname: str
    pid: int
    will_retry: bool

    def as_params(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "attempt": self.attempt,
            "exception_type": storable_text(self.exception_type),
            "message": truncate_head(storable_text(self.message)),
            "traceback": truncate_middle(storable_text(self.traceback)),
            "worker_id": self.worker_id,
            "hostname": self.hostname,
            "pid": self.pid,
            "will_retry": self.will_retry,
        }


def build_error_record(
    exc: BaseException, job: jobs.Job, worker_id: int | None, retry: bool
) -> JobErrorRecord:
    return JobErrorRecord(
        job_id=int(job.id or 0),
        # `attempts` counts the attempts finished before this one.
        attempt=job.attempts + 1,
        exception_type=qualified_name(exc),
        message=exception_message(exc),
        traceback=formatted_traceback(exc),
        worker_id=worker_id,
        hostname=socket.gethostname(),
        pid=os.getpid(),
        will_retry=retry,
    )


async def record_job_error(
    exc: BaseException, context: job_context.JobContext, worker_id: int | None
) -> None:
    """Insert one row within WRITE_TIMEOUT_S; any failure is logged, never raised."""
    try:
        record = build_error_record(exc, context.job, worker_id, will_retry(exc, context))
        await asyncio.wait_for(
            context.app.connector.execute_query_async(
                queries.INSERT_JOB_ERROR, **record.as_params()
            ),
            WRITE_TIMEOUT_S,
        )
    except TimeoutError:
        warn_throttled(
            logger,
            "record_job_error",
            "jobdash: could not record the error of job %s: the write took longer than %s s",
            context.job.id,
            WRITE_TIMEOUT_S,
        )
    except Exception:
        warn_throttled(
            logger,
            "record_job_error",
            "jobdash: could not record the error of job %s",
            context.job.id,
        )


async def record_job_errors(
    call_next: Callable[[], Awaitable[Any]],
    context: job_context.JobContext,
    worker: worker.Worker,
) -> Any:
    """Procrastinate worker middleware: `run_worker(worker_middleware=[record_job_errors])`."""
    try:
        return await call_next()
    except BaseException as exc:
        if is_failure(exc):
            try:
                await record_job_error(exc, context, worker.worker_id)
            except BaseException:
                # Cancelled while recording: the job's own exception still decides its outcome.
                logger.warning("jobdash: recording job %s's error was cancelled", context.job.id)
        raise
