"""Jobdash instrumentation for any Procrastinate App.

Everything at once::

    from jobdash.instrumentation import run_instrumented_worker
    run_instrumented_worker(app, queues=["default"], concurrency=4)

or the pieces, for a worker you compose yourself::

    from jobdash.instrumentation import record_job_errors, publish_periodic_tasks
    await app.run_worker_async(worker_middleware=[record_job_errors])
"""

from jobdash.core.errors import WorkerGaveUp
from jobdash.jobs.instrumentation.middleware import record_job_errors
from jobdash.jobs.instrumentation.outages import pool_options
from jobdash.jobs.instrumentation.registry import WorkerRegistry
from jobdash.jobs.instrumentation.runner import (
    InstrumentedWorker,
    add_maintenance_tasks,
    run_instrumented_worker,
    run_instrumented_worker_async,
)
from jobdash.jobs.instrumentation.schedules import publish_periodic_tasks

__all__ = [
    "InstrumentedWorker",
    "WorkerGaveUp",
    "WorkerRegistry",
    "add_maintenance_tasks",
    "pool_options",
    "publish_periodic_tasks",
    "record_job_errors",
    "run_instrumented_worker",
    "run_instrumented_worker_async",
]
