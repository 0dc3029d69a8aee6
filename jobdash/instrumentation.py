"""The stable API for instrumenting a Procrastinate worker (what the README documents).

    from jobdash.instrumentation import run_instrumented_worker
    run_instrumented_worker(app, queues=["emails"], concurrency=4)
"""

from jobdash.jobs.instrumentation import (
    publish_periodic_tasks,
    record_job_errors,
    run_instrumented_worker,
    run_instrumented_worker_async,
)

__all__ = [
    "publish_periodic_tasks",
    "record_job_errors",
    "run_instrumented_worker",
    "run_instrumented_worker_async",
]
