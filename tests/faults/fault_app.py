"""The Procrastinate App the fault tests run (`jobdash worker --app tests.faults.fault_app:app`).

Its one task proves it ran exactly once: it writes its job id to `fault_runs`, whose primary
key refuses a second row, so a job run twice fails its second run with a UniqueViolation
(recorded by the instrumentation) instead of passing unseen. Jobs whose `n` is a multiple of
`fail_every` fail their first attempt on purpose, so the worker writes error rows all along.
`fail_for_good` fails at once and is not retried: its job ends `failed`, which runs Jobdash's
trigger inside the worker's finish.
"""

from __future__ import annotations

import asyncio
import os

from procrastinate import App, JobContext, PsycopgConnector, RetryStrategy

FAULT_RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS fault_runs (
    job_id bigint PRIMARY KEY,
    attempt integer NOT NULL,
    ran_at timestamptz NOT NULL DEFAULT now()
)
"""

app = App(connector=PsycopgConnector(conninfo=os.environ.get("FAULT_TEST_DATABASE_URL", "")))


class DeliberateFailure(Exception):
    pass


@app.task(name="record_run", queue="faults", pass_context=True, retry=RetryStrategy(max_attempts=8))
async def record_run(context: JobContext, n: int, seconds: float = 0.2, fail_every: int = 0) -> int:
    job = context.job
    if fail_every and n % fail_every == 0 and job.attempts == 0:
        raise DeliberateFailure(f"job {n} fails its first attempt on purpose")
    await asyncio.sleep(seconds)
    await context.app.connector.execute_query_async(
        "INSERT INTO fault_runs (job_id, attempt) VALUES (%(job_id)s, %(attempt)s)",
        job_id=job.id,
        attempt=job.attempts + 1,
    )
    return n


@app.task(name="fail_for_good", queue="faults")
async def fail_for_good(n: int) -> None:
    raise DeliberateFailure(f"job {n} fails for good")
