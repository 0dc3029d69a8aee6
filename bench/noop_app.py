"""The Procrastinate App the overhead benchmark's workers run (`PYTHONPATH=bench`).

One async no-op task on queue "bench". The database comes from BENCH_DATABASE_URL. The pool
mirrors the one `jobdash worker` builds (min 1, max concurrency + 2, at least 4), so the plain
and the instrumented worker differ by Jobdash's instrumentation only, not by pool size
(psycopg_pool's default, 4 connections, would throttle a plain worker at concurrency 10).
Imports nothing from Jobdash.
"""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

QUEUE = "bench"
TASK = "noop"

app = App(
    connector=PsycopgConnector(
        conninfo=os.environ.get("BENCH_DATABASE_URL", ""),
        min_size=1,
        max_size=int(os.environ.get("BENCH_POOL_MAX_SIZE", "12")),
    )
)


@app.task(name=TASK, queue=QUEUE)
async def noop() -> None:
    return None
