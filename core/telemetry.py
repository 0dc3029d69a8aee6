"""The dashboard process's own timings, for GET /metrics (Prometheus histograms).

One registry per process, not prometheus_client's global one: importing Jobdash next to
another instrumented library then never fails on a metric registered twice. The process
collectors (CPU, memory, open files, GC) are added to it, as the global registry would have.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Histogram,
)

REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

# Bounds for a dashboard: most reads take milliseconds, a timed-out one 5 s.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

QUERY_SECONDS = Histogram(
    "jobdash_query_duration_seconds",
    "Time the dashboard's loaders took to read from the database, per data source "
    "(each read is shared by every session of the process).",
    ["source", "outcome"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "jobdash_http_request_duration_seconds",
    "Time the dashboard took to answer HTTP requests (not the websocket), per kind of route.",
    ["route", "method", "code"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)


@contextmanager
def timed_query(source: str) -> Iterator[None]:
    """Time one loader's read into QUERY_SECONDS (outcome ok or error)."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        QUERY_SECONDS.labels(source, outcome).observe(time.perf_counter() - started)
