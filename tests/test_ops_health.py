"""GET /healthz and /readyz (issue 14): database answers, schema current, rollups recording;
503 with the reason, within 2 s, when the database is down or hangs; one check per second
however many probes arrive."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from jobdash.app.web.health import HealthCheck, HealthProbe, check_database, health_routes
from jobdash.core.database import describe
from tests.pg_helpers import PrivatePostgres, private_postgres


def client_for(url: str, **probe_options: float) -> TestClient:
    probe = HealthProbe(database_url=lambda: url, cache_s=probe_options.get("cache_s", 0.0))
    return TestClient(Starlette(routes=health_routes(probe)))


def test_healthy_database(database_url, conn):
    client = client_for(database_url)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["schema"] == "current"
    assert isinstance(body["checked_in_ms"], float) and body["checked_in_ms"] < 1000
    assert set(body) == {"status", "database", "schema", "checked_in_ms"}
    assert response.headers["cache-control"] == "no-store"
    assert client.head("/healthz").status_code == 200


def test_ready_only_when_rollups_recorded(database_url, conn):
    client = client_for(database_url)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["rollups"] == "behind"
    assert "no rollup has run yet" in response.json()["reason"]
    conn.execute("UPDATE jobdash_rollup_state SET last_run_at = now() - interval '10 minutes'")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "10 min behind" in response.json()["reason"]
    assert 590 < response.json()["rollup_lag_s"] < 700
    conn.execute("UPDATE jobdash_rollup_state SET last_run_at = now() - interval '1 minute'")
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["rollups"] == "current"
    # Liveness does not care about the rollups.
    conn.execute("UPDATE jobdash_rollup_state SET last_run_at = NULL")
    assert client.get("/healthz").status_code == 200


def test_schema_not_migrated(empty_database_url):
    response = client_for(empty_database_url).get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok" and body["schema"] == "pending"
    assert "procrastinate schema" in body["reason"] and "jobdash migrate" in body["reason"]


def test_pending_jobdash_migration(database_url, conn):
    conn.execute("DELETE FROM jobdash_schema_migrations WHERE name LIKE '004%'")
    body = client_for(database_url).get("/healthz").json()
    assert body["schema"] == "pending" and "004_history.sql" in body["reason"]


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


def test_database_down_is_503_within_2_s(pg: PrivatePostgres):
    if not pg.running:
        pg.start()
    url = pg.create_database(migrated=True)
    client = client_for(url)
    assert client.get("/healthz").status_code == 200
    pg.stop()
    try:
        started = time.monotonic()
        response = client.get("/healthz")
        assert time.monotonic() - started < 2
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable" and body["database"] == "unreachable"
        # One line, and nothing about where the database is.
        assert "\n" not in body["reason"] and "refused" in body["reason"].lower()
        assert describe(url) not in response.text and str(pg.port) not in response.text
        assert client.get("/readyz").status_code == 503
    finally:
        pg.start()
    assert client.get("/healthz").status_code == 200


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts TCP connections and never says a word (a hung database)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"postgresql://postgres@127.0.0.1:{listener.getsockname()[1]}/hung"
    listener.close()


def test_hanging_database_is_503_within_2_s(silent_server):
    client = client_for(silent_server)
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.json()["database"] == "slow"
    assert "did not answer within 1000 ms" in response.json()["reason"]


def test_probe_storm_runs_one_check():
    calls = []
    release = threading.Event()

    def slow_check(url: str) -> HealthCheck:
        calls.append(url)
        release.wait(5)
        return HealthCheck("ok", "current", None, 1.0)

    probe = HealthProbe(check=slow_check, database_url=lambda: "x", timeout_s=0.5, cache_s=1.0)
    results: list[HealthCheck] = []
    threads = [threading.Thread(target=lambda: results.append(probe.current())) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The check hangs: every probe got "slow" within the timeout, one check ran.
    assert len(calls) == 1 and {r.database for r in results} == {"slow"}
    release.set()
    deadline = time.monotonic() + 5
    while probe.current().database != "ok":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for _ in range(20):
        assert probe.current().healthy
    assert len(calls) == 1  # cached for a second after it finished


def test_slow_answer_counts_as_unhealthy(database_url, monkeypatch):
    from jobdash.app.web import health

    real = health.pending_migrations

    def slow(url: str) -> list[str]:
        time.sleep(0.3)
        return real(url)

    monkeypatch.setattr(health, "pending_migrations", slow)
    result = check_database(database_url, timeout_s=0.2)
    assert not result.healthy and result.database == "slow"
    assert "limit 200 ms" in (result.reason or "")


def test_not_configured(monkeypatch):
    monkeypatch.delenv("JOBDASH_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    client = TestClient(Starlette(routes=health_routes(HealthProbe(cache_s=0))))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "not configured"
