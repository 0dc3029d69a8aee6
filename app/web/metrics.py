"""GET /metrics: the dashboard's data in Prometheus text format, and its own timings.

Every number comes from the dashboard's process-wide cache (app/cache/data.py), so a scrape
every 15 s costs the database what one viewer costs, and twenty scrapers what one costs.
When the database is down the last good values are served and `jobdash_data_stale{source}`
says so (1), with `jobdash_database_up` 0.

Access: open when no sign-in is configured (like the pages). With sign-in, a signed-in
person's session cookie, or `Authorization: Bearer $JOBDASH_METRICS_TOKEN` (for Prometheus).
When JOBDASH_METRICS_TOKEN is set, an anonymous request needs it even without sign-in.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobdash.app.cache import data
from jobdash.app.cache.shared_cache import Result
from jobdash.app.read.models import QueueStats, WorkerHealth
from jobdash.app.web.auth_routes import identity_from_request
from jobdash.app.web.health import PROBE, HealthProbe
from jobdash.core import pool, telemetry
from jobdash.core.auth.identity import Action, require
from jobdash.core.errors import ConfigError, JobdashError, describe_error
from jobdash.core.settings import load_ops_settings

METRICS_PATH = "/metrics"
JOB_STATES = ("ready", "scheduled", "doing", "failed")


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def queue_metrics(stats: QueueStats) -> list[Metric]:
    jobs = _gauge("jobdash_jobs", "Jobs per queue and state (ready = due and waiting).",
                  ["queue", "state"])  # fmt: skip
    oldest = _gauge(
        "jobdash_queue_oldest_ready_age_seconds",
        "Age of the oldest job that is due and waiting, per queue (0 when none waits).",
        ["queue"],
    )
    for queue in stats.queues:
        for state in JOB_STATES:
            jobs.add_metric([queue.name, state], getattr(queue, state))
        oldest.add_metric([queue.name], queue.oldest_ready_age_s or 0.0)
    finished = _gauge(
        "jobdash_jobs_finished_last_hour", "Jobs finished in the last hour, all queues.",
        ["outcome"],
    )  # fmt: skip
    finished.add_metric(["succeeded"], stats.successful_jobs)
    finished.add_metric(["failed"], stats.failed_jobs)
    failed = _gauge("jobdash_failed_jobs", "Jobs in the failed state, all queues.")
    failed.add_metric([], sum(queue.failed for queue in stats.queues))
    return [jobs, oldest, finished, failed]


def worker_metrics(health: WorkerHealth, queue_names: list[str]) -> list[Metric]:
    workers = _gauge("jobdash_workers", "Workers with a row in procrastinate_workers.")
    workers.add_metric([], health.total_workers)
    healthy = _gauge("jobdash_workers_healthy", "Workers whose heartbeat is recent.")
    healthy.add_metric([], health.active_workers)
    per_queue = _gauge(
        "jobdash_queue_healthy_workers",
        "Healthy workers listening on the queue (a worker on all queues counts for each).",
        ["queue"],
    )
    for name in queue_names:
        count = sum(
            1 for w in health.workers if w.healthy and (w.queues is None or name in w.queues)
        )
        per_queue.add_metric([name], count)
    doing = _gauge("jobdash_jobs_in_progress", "Jobs in the doing state.")
    doing.add_metric([], health.jobs_in_progress)
    stalled = _gauge(
        "jobdash_jobs_stalled", "Doing jobs whose worker is gone or unhealthy (retry them)."
    )
    stalled.add_metric([], health.stalled_jobs)
    return [workers, healthy, per_queue, doing, stalled]


def task_metrics(totals: dict[tuple[str, str, str], int]) -> list[Metric]:
    counter = CounterMetricFamily(
        "jobdash_task_jobs",
        "Finished attempts per queue, task and outcome, from the history rollups, counted "
        "since this dashboard process started (use rate() or increase()).",
        labels=["queue", "task", "outcome"],
    )
    for (queue, task, outcome), value in totals.items():
        counter.add_metric([queue, task, outcome], value)
    return [counter]


class DashboardCollector(Collector):
    """Reads the cached loaders at scrape time."""

    def __init__(self, probe: HealthProbe = PROBE) -> None:
        self._probe = probe

    def describe(self) -> list[Metric]:
        # Without it the registry would call collect() on register: database reads at import.
        return []

    def collect(self) -> Iterator[Metric]:
        check = self._probe.current()
        up = _gauge("jobdash_database_up", "1 when the database answers and is migrated.")
        up.add_metric([], 1 if check.healthy else 0)
        yield up
        stale = _gauge(
            "jobdash_data_stale",
            "1 when a source's last read failed and older data is served.",
            ["source"],
        )
        try:
            url = pool.read_database_url()
        except ConfigError:
            yield stale
            return
        stats = data.fetch(data.QUEUE_STATS)
        health = data.fetch(data.WORKER_HEALTH)
        rollup = data.fetch(data.ROLLUP_STATUS)
        totals = data.fetch(data.TASK_TOTALS, url)
        sources: list[tuple[data.Source[object], Result[object]]] = [
            (data.QUEUE_STATS, stats),
            (data.WORKER_HEALTH, health),
            (data.ROLLUP_STATUS, rollup),
            (data.TASK_TOTALS, totals),
        ]
        for source, result in sources:
            stale.add_metric([source.name], 1 if result.is_stale else 0)
        yield stale
        if stats.data is not None:
            yield from queue_metrics(stats.data)
        if health.data is not None:
            queues = [q.name for q in stats.data.queues] if stats.data else []
            yield from worker_metrics(health.data, queues)
        status = rollup.data
        lag = _gauge(
            "jobdash_rollup_lag_seconds",
            "Seconds since the history rollup last ran (NaN: never ran). Over 300: no "
            "instrumented worker is recording history.",
        )
        if status is not None:
            lag.add_metric(
                [],
                (status.now - status.complete_to).total_seconds()
                if status.complete_to is not None
                else math.nan,
            )
            yield lag
        if totals.data is not None:
            yield from task_metrics(totals.data)


telemetry.REGISTRY.register(DashboardCollector())


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def refusal(request: Request) -> Response | None:
    """None when the request may read /metrics, else the response that refuses it."""
    try:
        expected = load_ops_settings().metrics_token
        given = _bearer(request)
        if expected and given is not None:
            if hmac.compare_digest(given.encode(), expected.encode()):
                return None
            return _unauthorized("wrong bearer token")
        identity = identity_from_request(request)
        if expected and (identity is None or identity.source == "anonymous"):
            return _unauthorized("Authorization: Bearer token needed")
        require(identity, Action.READ, read_only=False)
    except ConfigError as exc:
        return PlainTextResponse(f"metrics unavailable: {describe_error(exc)}\n", 503)
    except JobdashError as exc:  # PermissionDenied
        return _unauthorized(describe_error(exc))
    return None


def _unauthorized(reason: str) -> Response:
    return PlainTextResponse(
        f"{reason}\n",
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="jobdash"', "Cache-Control": "no-store"},
    )


def metrics(request: Request) -> Response:
    # Sync: the loaders block; Starlette runs this in its thread pool.
    refused = refusal(request)
    if refused is not None:
        return refused
    return Response(
        generate_latest(telemetry.REGISTRY),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )


METRICS_ROUTES = [Route(METRICS_PATH, metrics, methods=["GET"])]

# Paths grouped into a few route kinds, so arbitrary URLs cannot grow the label set.
_ROUTE_KINDS = (
    ("/healthz", "healthz"),
    ("/readyz", "readyz"),
    ("/metrics", "metrics"),
    ("/export/", "export"),
    ("/signin", "signin"),
    ("/signout", "signout"),
    ("/_stcore/", "streamlit_api"),
    ("/static/", "static"),
    ("/media/", "media"),
    ("/component/", "component"),
)


def route_kind(path: str) -> str:
    for prefix, kind in _ROUTE_KINDS:
        if path == prefix or path.startswith(prefix):
            return kind
    return "page"


class RequestTimer:
    """ASGI middleware: each HTTP request's duration into REQUEST_SECONDS (websockets pass)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            telemetry.REQUEST_SECONDS.labels(
                route_kind(scope.get("path", "")),
                scope.get("method", "GET") if scope.get("method") in _METHODS else "other",
                str(status),
            ).observe(time.perf_counter() - started)


_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"}
