"""What a demo job does when it runs, without running it: its attempts, their durations and
outcomes, drawn from the demo tasks' own code (their `_work` calls, their failures, their
retry strategies) under `dry_run`, so nothing here restates the tasks.

    attempts = simulate_job(spec, rng)   # [Attempt(seconds=0.21, outcome="succeeded", …)]

Used to make up the day of history a fresh `jobdash demo` shows, and by the tests that size
the demo's workload (the worker-seconds it asks for per second of traffic).
"""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from procrastinate.jobs import Job

from jobdash.jobs.demo import app as demo
from jobdash.jobs.demo.workload import JobSpec


@dataclass(frozen=True)
class Attempt:
    seconds: float
    outcome: str  # "succeeded", "failed" (final) or "retried"
    exception_type: str | None = None  # `module.Name`, as the instrumentation records it
    message: str | None = None
    retry_in_s: float = 0.0


def _exception_type(error: BaseException) -> str:
    cls = type(error)
    return f"{cls.__module__}.{cls.__qualname__}"


def _call(
    spec: JobSpec, rng: random.Random, transient_failure_rate: float | None
) -> tuple[float, BaseException | None]:
    """One attempt of the task, dry: the seconds it would take and what it raised."""
    task = demo.app.tasks[spec.task_name]
    with demo.dry_run(rng, transient_failure_rate) as run:
        try:
            result = task.func(**spec.kwargs)
            if inspect.iscoroutine(result):
                # Under dry_run the coroutine never awaits anything that suspends.
                try:
                    result.send(None)
                except StopIteration:
                    pass
                else:
                    result.close()
                    raise RuntimeError(f"{spec.task_name} suspended during a dry run")
        except Exception as error:  # noqa: BLE001 - any task failure is an outcome
            return run.seconds, error
    return run.seconds, None


def simulate_job(
    spec: JobSpec, rng: random.Random, transient_failure_rate: float | None = None
) -> list[Attempt]:
    """Every attempt the job makes until it succeeds or fails for good (with transient
    failures this likely instead of the tasks' TRANSIENT_FAILURE_RATE, if given)."""
    task = demo.app.tasks[spec.task_name]
    attempts: list[Attempt] = []
    while True:
        seconds, error = _call(spec, rng, transient_failure_rate)
        if error is None:
            attempts.append(Attempt(seconds, "succeeded"))
            return attempts
        job = Job(
            id=None, queue=task.queue, lock=None, queueing_lock=None,
            task_name=spec.task_name, attempts=len(attempts),
        )  # fmt: skip
        retry = task.get_retry_exception(exception=error, job=job)
        kind, message = _exception_type(error), str(error)
        if retry is None:
            attempts.append(Attempt(seconds, "failed", kind, message))
            return attempts
        retry_at = retry.retry_decision.retry_at
        wait = (retry_at - datetime.now(UTC)).total_seconds() if retry_at else 0.0
        attempts.append(Attempt(seconds, "retried", kind, message, max(0.0, wait)))


def worker_seconds(spec: JobSpec, rng: random.Random) -> float:
    """The worker time a job takes over all its attempts."""
    return sum(a.seconds for a in simulate_job(spec, rng))
