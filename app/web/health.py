"""GET /healthz and /readyz: does the database answer, is its schema migrated, is history recorded.

/healthz: 200 when the database answered within CHECK_TIMEOUT_S and no migration is pending,
else 503 with the reason. /readyz: the same, and the rollups are no more than
RECORDING_STALE_AFTER behind. Both are open (probes carry no credentials), so the body says
what is wrong in words but never names a host, a database or a user.

A probe storm is harmless: one check runs at a time and its result is reused for CACHE_S; a
database that hangs costs one waiting thread, not one per probe, and every probe still gets
its answer within CHECK_TIMEOUT_S.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jobdash.app.read.history import RECORDING_STALE_AFTER, load_recording_status
from jobdash.core.database import connect, describe
from jobdash.core.errors import describe_error
from jobdash.core.pool import configured_database_url
from jobdash.core.schema import pending_migrations

CHECK_TIMEOUT_S = 1.0
CACHE_S = 1.0
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
_HEADERS = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class HealthCheck:
    """One check of the database; `reason` is None when it is healthy."""

    database: str  # "ok" | "unreachable" | "slow" | "not configured"
    schema: str  # "current" | "pending" | "unknown"
    reason: str | None
    checked_in_ms: float
    rollup_lag_s: float | None = None
    rollup_reason: str | None = None  # why readiness fails on the rollups (None: recording)

    @property
    def healthy(self) -> bool:
        return self.reason is None

    @property
    def ready(self) -> bool:
        return self.healthy and self.rollup_reason is None


def _without_location(text: str, url: str) -> str:
    """A reason fit for an open endpoint: the database's host, port and name replaced."""
    return text.replace(describe(url), "the database")


def check_database(url: str, timeout_s: float = CHECK_TIMEOUT_S) -> HealthCheck:
    """Connect, read the pending migrations and the rollup state (blocking; see HealthProbe)."""
    started = time.monotonic()

    def elapsed_ms() -> float:
        return round((time.monotonic() - started) * 1000, 1)

    try:
        pending = pending_migrations(url)
    except Exception as exc:
        reason = _without_location(describe_error(exc), url)
        return HealthCheck("unreachable", "unknown", reason, elapsed_ms())
    if pending:
        shown = ", ".join(pending[:3]) + (" …" if len(pending) > 3 else "")
        reason = f"schema not migrated ({len(pending)} pending: {shown}): run `jobdash migrate`"
        return HealthCheck("ok", "pending", reason, elapsed_ms())
    lag_s, rollup_reason = None, None
    try:
        with connect(url, application_name="jobdash-health") as conn:
            status = load_recording_status(conn)
        if status.complete_to is None:
            rollup_reason = "no rollup has run yet: is an instrumented worker running?"
        else:
            lag_s = max(0.0, (status.now - status.complete_to).total_seconds())
            if not status.recording:
                rollup_reason = (
                    f"rollups are {lag_s / 60:.0f} min behind (more than "
                    f"{RECORDING_STALE_AFTER.total_seconds() / 60:.0f} min): "
                    "is an instrumented worker running?"
                )
    except Exception as exc:
        rollup_reason = "rollup state unreadable: " + _without_location(describe_error(exc), url)
    took = elapsed_ms()
    if took > timeout_s * 1000:
        reason = f"the database answered in {took:.0f} ms (limit {timeout_s * 1000:.0f} ms)"
        return HealthCheck("slow", "current", reason, took, lag_s, rollup_reason)
    return HealthCheck("ok", "current", None, took, lag_s, rollup_reason)


class HealthProbe:
    """The latest check, reused for `cache_s`; at most one check runs at a time."""

    def __init__(
        self,
        check: Callable[[str], HealthCheck] = check_database,
        database_url: Callable[[], str] = configured_database_url,
        timeout_s: float = CHECK_TIMEOUT_S,
        cache_s: float = CACHE_S,
    ) -> None:
        self._check = check
        self._database_url = database_url
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._latest: tuple[float, HealthCheck] | None = None
        self._running: tuple[float, Future[HealthCheck]] | None = None

    def current(self) -> HealthCheck:
        now = time.monotonic()
        with self._lock:
            if self._latest and now - self._latest[0] < self._cache_s:
                return self._latest[1]
            if self._running is None:
                try:
                    url = self._database_url()
                except Exception as exc:
                    return HealthCheck("not configured", "unknown", describe_error(exc), 0.0)
                future: Future[HealthCheck] = Future()
                self._running = (now, future)
                threading.Thread(
                    target=self._run, args=(url, future), name="jobdash health check", daemon=True
                ).start()
            started, future = self._running
        remaining = started + self._timeout_s - time.monotonic()
        try:
            return future.result(timeout=max(0.0, remaining))
        except TimeoutError:
            timed_out = HealthCheck(
                "slow",
                "unknown",
                f"the database did not answer within {self._timeout_s * 1000:.0f} ms",
                round((time.monotonic() - started) * 1000, 1),
            )
            with self._lock:
                self._latest = (time.monotonic(), timed_out)
            return timed_out

    def _run(self, url: str, future: Future[HealthCheck]) -> None:
        try:
            result = self._check(url)
        except Exception as exc:  # check_database catches; a replaced check might not
            result = HealthCheck("unreachable", "unknown", describe_error(exc), 0.0)
        with self._lock:
            self._latest = (time.monotonic(), result)
            self._running = None
        future.set_result(result)


PROBE = HealthProbe()


def health_body(result: HealthCheck, *, readiness: bool) -> dict[str, object]:
    ok = result.ready if readiness else result.healthy
    body: dict[str, object] = {
        "status": "ok" if ok else "unavailable",
        "database": result.database,
        "schema": result.schema,
        "checked_in_ms": result.checked_in_ms,
    }
    if readiness:
        body["rollups"] = "current" if result.rollup_reason is None else "behind"
        body["rollup_lag_s"] = (
            round(result.rollup_lag_s, 1) if result.rollup_lag_s is not None else None
        )
    reason = result.reason or (result.rollup_reason if readiness else None)
    if reason:
        body["reason"] = reason
    return body


def health_routes(probe: HealthProbe = PROBE) -> list[Route]:
    def respond(readiness: bool) -> JSONResponse:
        result = probe.current()
        ok = result.ready if readiness else result.healthy
        return JSONResponse(
            health_body(result, readiness=readiness),
            status_code=200 if ok else 503,
            headers=_HEADERS,
        )

    # Sync endpoints: Starlette runs them in its thread pool, so the wait blocks no event loop.
    def healthz(request: Request) -> JSONResponse:
        return respond(readiness=False)

    def readyz(request: Request) -> JSONResponse:
        return respond(readiness=True)

    return [
        Route(HEALTH_PATH, healthz, methods=["GET", "HEAD"]),
        Route(READY_PATH, readyz, methods=["GET", "HEAD"]),
    ]


HEALTH_ROUTES = health_routes()
