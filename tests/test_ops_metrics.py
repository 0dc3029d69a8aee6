"""GET /metrics (issue 14): Prometheus text from the dashboard's cached loaders, counters that
only go up, the dashboard's own timings, and who may read it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from jobdash.app.cache import data
from jobdash.app.read.task_totals import TaskTotals
from jobdash.app.web import auth_routes, metrics
from jobdash.app.web.health import HealthProbe, health_routes
from jobdash.core import pool
from jobdash.core.auth.identity import Identity, Role
from jobdash.core.auth.sessions import SESSION_COOKIE
from tests.auth_helpers import builtin_service
from tests.loader_helpers import add_worker, defer, set_status


@pytest.fixture
def dashboard_env(database_url, monkeypatch):
    monkeypatch.setenv("JOBDASH_DATABASE_URL", database_url)
    for name in ("JOBDASH_METRICS_TOKEN", "JOBDASH_READ_DATABASE_URL", "JOBDASH_USERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(metrics, "identity_from_request", lambda request: _ANONYMOUS)
    data.CACHE.invalidate()
    yield database_url
    data.CACHE.invalidate()
    pool.close_pools()


_ANONYMOUS = Identity("anonymous", Role.ADMIN, "anonymous")


def client() -> TestClient:
    app = Starlette(
        routes=[*metrics.METRICS_ROUTES, *health_routes(HealthProbe(cache_s=0))],
        middleware=[Middleware(metrics.RequestTimer)],
    )
    return TestClient(app)


def scrape(test_client: TestClient, **headers: str) -> dict[tuple[str, tuple], float]:
    response = test_client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_queue_and_worker_metrics(dashboard_env, conn):
    for _ in range(3):
        defer(conn, queue="emails")
    running = defer(conn, queue="billing")
    failed = defer(conn, queue="billing")
    worker = add_worker(conn, heartbeat_ago_s=1, host=("h1", 1, 5.0, 100.0, 4))
    set_status(conn, running, "doing", worker_id=worker)
    set_status(conn, failed, "failed")
    add_worker(conn, heartbeat_ago_s=10_000)
    samples = scrape(client())
    assert samples[("jobdash_jobs", (("queue", "emails"), ("state", "ready")))] == 3
    assert samples[("jobdash_jobs", (("queue", "billing"), ("state", "doing")))] == 1
    assert samples[("jobdash_jobs", (("queue", "billing"), ("state", "failed")))] == 1
    assert samples[("jobdash_failed_jobs", ())] == 1
    assert samples[("jobdash_queue_oldest_ready_age_seconds", (("queue", "emails"),))] >= 0
    assert samples[("jobdash_workers", ())] == 2
    assert samples[("jobdash_workers_healthy", ())] == 1
    # The healthy worker listens on "default" only (add_worker): none for billing.
    assert samples[("jobdash_queue_healthy_workers", (("queue", "billing"),))] == 0
    assert samples[("jobdash_jobs_stalled", ())] == 0
    assert samples[("jobdash_database_up", ())] == 1
    assert samples[("jobdash_data_stale", (("source", "queue_stats"),))] == 0
    assert ("jobdash_rollup_lag_seconds", ()) in samples  # NaN: never ran
    assert ("process_resident_memory_bytes", ()) in samples


def test_served_from_the_cache(dashboard_env, conn):
    test_client = client()
    scrape(test_client)
    calls = []
    original = data.QUEUE_STATS.load
    object.__setattr__(data.QUEUE_STATS, "load", lambda *a: calls.append(1) or original(*a))
    try:
        for _ in range(5):
            scrape(test_client)
    finally:
        object.__setattr__(data.QUEUE_STATS, "load", original)
    assert calls == []  # five scrapes within the refresh interval: no query


def test_own_timings(dashboard_env, conn):
    test_client = client()
    data.CACHE.invalidate()
    scrape(test_client)
    test_client.get("/healthz")
    samples = scrape(test_client)
    assert (
        samples[
            ("jobdash_query_duration_seconds_count", (("outcome", "ok"), ("source", "queue_stats")))
        ]
        >= 1
    )
    key = (
        "jobdash_http_request_duration_seconds_count",
        (("code", "200"), ("method", "GET"), ("route", "healthz")),
    )
    assert samples[key] >= 1
    assert metrics.route_kind("/anything/at/all") == "page"
    assert metrics.route_kind("/export/failed-jobs.csv") == "export"


def _history_row(conn, minutes_ago: int, task: str, succeeded: int, failed: int) -> None:
    conn.execute(
        "INSERT INTO jobdash_history_minute (bucket, queue_name, task_name, succeeded, failed)"
        " VALUES (date_trunc('minute', now()) - make_interval(mins => %s), 'q', %s, %s, %s)"
        " ON CONFLICT (bucket, queue_name, task_name) DO UPDATE"
        " SET succeeded = excluded.succeeded, failed = excluded.failed",
        (minutes_ago, task, succeeded, failed),
    )


def test_task_counters_count_from_start_and_never_drop(conn):
    _history_row(conn, 30, "t", 100, 100)  # before the process started: not counted
    _history_row(conn, 0, "t", 2, 1)
    totals = TaskTotals()
    first = totals.load(conn)
    assert first[("q", "t", "succeeded")] == 2 and first[("q", "t", "failed")] == 1
    _history_row(conn, 0, "t", 5, 1)  # the rollup recomputed the current minute
    assert totals.load(conn)[("q", "t", "succeeded")] == 5
    # Time passes: the start minute is now 20 minutes old (past FREEZE_AFTER) and frozen.
    assert totals.since is not None
    totals.since -= timedelta(minutes=20)
    totals.frozen_until = totals.since
    conn.execute(
        "UPDATE jobdash_history_minute SET bucket = bucket - interval '20 minutes'"
        " WHERE bucket = date_trunc('minute', now())"
    )
    _history_row(conn, 0, "t", 1, 0)
    assert totals.load(conn)[("q", "t", "succeeded")] == 6
    # Retention drops the old minute: the counter keeps its value.
    conn.execute(
        "DELETE FROM jobdash_history_minute WHERE bucket < date_trunc('minute', now())"
        " - interval '10 minutes'"
    )
    after = totals.load(conn)
    assert after[("q", "t", "succeeded")] == 6 and after[("q", "t", "failed")] == 1


def test_task_counters_in_exposition(dashboard_env, conn):
    _history_row(conn, 0, "tasks.send", 4, 2)
    samples = scrape(client())
    labels = (("outcome", "failed"), ("queue", "q"), ("task", "tasks.send"))
    assert samples[("jobdash_task_jobs_total", labels)] == 2


def test_stale_when_the_database_goes(dashboard_env, monkeypatch):
    test_client = client()
    scrape(test_client)
    monkeypatch.setenv("JOBDASH_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/gone")
    deadline = time.monotonic() + 5
    while (samples := scrape(test_client))[("jobdash_database_up", ())] != 0:
        assert time.monotonic() < deadline  # the health check is cached for a second
        time.sleep(0.1)
    assert samples[("jobdash_data_stale", (("source", "queue_stats"),))] == 1


def test_bearer_token(dashboard_env, monkeypatch):
    monkeypatch.setenv("JOBDASH_METRICS_TOKEN", "s3cret-token")
    test_client = client()
    refused = test_client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert test_client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    scrape(test_client, Authorization="Bearer s3cret-token")


def test_sign_in_protects_metrics(dashboard_env, monkeypatch):
    service = builtin_service()
    monkeypatch.setattr(
        metrics, "identity_from_request", lambda r: auth_routes.identity_from_request(r, service)
    )
    test_client = client()
    assert test_client.get("/metrics").status_code == 401
    cookie = service.issue_session(Identity("vera", Role.VIEWER, "builtin"))
    test_client.cookies.set(SESSION_COOKIE, cookie)
    scrape(test_client)
    test_client.cookies.clear()
    monkeypatch.setenv("JOBDASH_METRICS_TOKEN", "tok")
    scrape(test_client, Authorization="Bearer tok")
