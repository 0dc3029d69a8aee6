"""Why the dashboard never falls over and why twenty tabs cost about what one costs.

- Each panel's loader is wrapped in `st.cache_data` (process-wide) with a ttl just below the
  panel's refresh interval: all sessions of a process share one query per interval.
- `PanelMemory` (one per process) keeps each panel's last good data. When a load fails
  (database down, statement timeout, a bug), the panel keeps showing that data with a
  "stale since HH:MM:SS — reason" notice; further attempts are spaced by the panel's ttl so
  viewers do not hammer a sick database; the first successful load clears the notice.
- `clear_panel_caches(*names)` is for actions: after a write, every session sees fresh data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from jobdash.app.rules.text import clock_utc
from jobdash.core import pool as db
from jobdash.core.errors import ConfigError, describe_error
from jobdash.core.settings import load_settings

logger = logging.getLogger(__name__)

QUEUE_STATS = "queue_stats"
WORKER_HEALTH = "worker_health"
FAILED_JOBS = "failed_jobs"
SCHEDULER = "scheduler"
PANEL_NAMES = (QUEUE_STATS, WORKER_HEALTH, FAILED_JOBS, SCHEDULER)

# Which setting holds each panel's refresh interval (seconds).
REFRESH_SETTING = {
    QUEUE_STATS: "queue_refresh_s",
    WORKER_HEALTH: "workers_refresh_s",
    FAILED_JOBS: "failed_refresh_s",
    SCHEDULER: "scheduler_refresh_s",
}
FAILED_JOBS_LIMIT = 50
UPCOMING_LIMIT = 10


@dataclass(frozen=True)
class Loaded:
    """A loader's result and when it was read (epoch seconds)."""

    data: Any
    loaded_at: float


@dataclass(frozen=True)
class PanelResult:
    """What a panel renders: the freshest good data it has, and why it is stale if it is."""

    data: Any | None
    loaded_at: float | None
    stale_since: float | None = None
    error: str | None = None

    @property
    def is_stale(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class _Failure:
    since: float
    last_attempt: float
    reason: str


def refresh_interval(panel: str, settings: Any | None = None) -> float:
    settings = settings or load_settings()
    return float(getattr(settings, REFRESH_SETTING[panel]))


def cache_ttl(interval_s: float) -> float:
    """Just below the interval, so each tick of a viewer finds data at most one interval old."""
    return max(interval_s * 0.5, interval_s - 0.5)


def stale_notice(result: PanelResult) -> str | None:
    """ "stale since HH:MM:SS — <reason>" (UTC clock), or None when the data is fresh."""
    if not result.is_stale:
        return None
    since = clock_utc(result.stale_since) if result.stale_since is not None else "?"
    return f"stale since {since} — {result.error}"


class PanelMemory:
    """Last good data and current failure per panel key; shared by every session (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._good: dict[Any, Loaded] = {}
        self._failing: dict[Any, _Failure] = {}

    def fetch(self, key: Any, load: Callable[[], Loaded], *, retry_after_s: float) -> PanelResult:
        """Load through `load`; on failure fall back to the last good data, marked stale."""
        now = self._clock()
        with self._lock:
            failure = self._failing.get(key)
        if failure is not None and now - failure.last_attempt < retry_after_s:
            return self._stale(key, failure)
        try:
            loaded = load()
        except Exception as exc:
            reason = describe_error(exc)
            failure = _Failure(failure.since if failure else now, now, reason)
            with self._lock:
                self._failing[key] = failure
            logger.warning("panel %s: load failed, showing last good data: %s", key[0], reason)
            return self._stale(key, failure)
        with self._lock:
            self._good[key] = loaded
            recovered = self._failing.pop(key, None)
        if recovered is not None:
            logger.warning(
                "panel %s: recovered (stale since %s)", key[0], clock_utc(recovered.since)
            )
        return PanelResult(loaded.data, loaded.loaded_at)

    def forget_failures(self, names: tuple[str, ...]) -> None:
        """Let the next fetch of these panels try at once (after an action, or in tests)."""
        with self._lock:
            for key in [k for k in self._failing if k[0] in names]:
                del self._failing[key]

    def reset(self) -> None:
        with self._lock:
            self._good.clear()
            self._failing.clear()

    def _stale(self, key: Any, failure: _Failure) -> PanelResult:
        with self._lock:
            good = self._good.get(key)
        return PanelResult(
            data=good.data if good else None,
            loaded_at=good.loaded_at if good else None,
            stale_since=failure.since,
            error=failure.reason,
        )


MEMORY = PanelMemory()


def _settings_or_defaults() -> Any:
    try:
        return load_settings()
    except ConfigError:
        return None  # the page reports the bad setting; caches fall back to default intervals


def _ttl(panel: str) -> float:
    settings = _settings_or_defaults()
    defaults = {QUEUE_STATS: 5.0, WORKER_HEALTH: 5.0, FAILED_JOBS: 10.0, SCHEDULER: 30.0}
    interval = refresh_interval(panel, settings) if settings else defaults[panel]
    return cache_ttl(interval)


def _loaders() -> Any:
    # Imported when first used, so the page can start while the loaders module is absent/broken.
    from jobdash.app.read import dashboard as loaders
    return loaders


@st.cache_data(ttl=_ttl(QUEUE_STATS), max_entries=16, show_spinner=False)
def _cached_queue_stats(database_url: str) -> Loaded:
    with db.connection(database_url) as conn:
        return Loaded(_loaders().load_queue_stats(conn), time.time())


@st.cache_data(ttl=_ttl(WORKER_HEALTH), max_entries=16, show_spinner=False)
def _cached_worker_health(database_url: str, healthy_heartbeat_s: float) -> Loaded:
    with db.connection(database_url) as conn:
        data = _loaders().load_worker_health(conn, healthy_heartbeat_s=healthy_heartbeat_s)
        return Loaded(data, time.time())


@st.cache_data(ttl=_ttl(FAILED_JOBS), max_entries=16, show_spinner=False)
def _cached_failed_jobs(database_url: str) -> Loaded:
    with db.connection(database_url) as conn:
        data = _loaders().load_failed_jobs(conn, limit=FAILED_JOBS_LIMIT)
        return Loaded(data, time.time())


@st.cache_data(ttl=_ttl(SCHEDULER), max_entries=16, show_spinner=False)
def _cached_scheduler(database_url: str, app_path: str | None) -> Loaded:
    extra = app_periodic_definitions(app_path)[0] if app_path else None
    with db.connection(database_url) as conn:
        data = _loaders().load_scheduler(conn, extra_periodic=extra, limit=UPCOMING_LIMIT)
        return Loaded(data, time.time())


_CACHED = {
    QUEUE_STATS: _cached_queue_stats,
    WORKER_HEALTH: _cached_worker_health,
    FAILED_JOBS: _cached_failed_jobs,
    SCHEDULER: _cached_scheduler,
}


@st.cache_resource(show_spinner=False)
def _periodic_from_app(app_path: str) -> list:
    from procrastinate import App
    from procrastinate.utils import load_from_path

    # Accept "package.module:app" (as `jobdash serve --app` documents) and "package.module.app".
    app = load_from_path(app_path.replace(":", "."), App)
    return list(_loaders().periodic_definitions_from_app(app))


def app_periodic_definitions(app_path: str) -> tuple[list, str | None]:
    """Periodic definitions of the App named by JOBDASH_APP, or ([], why they are missing)."""
    try:
        return _periodic_from_app(app_path), None
    except Exception as exc:
        return [], f"periodic tasks of {app_path} not shown: {describe_error(exc)}"


def fetch_panel(panel: str) -> PanelResult:
    """The panel's data for this run: cached, or last good data with a stale notice."""
    settings = load_settings()
    url = db.configured_database_url()
    args: tuple = (url,)
    if panel == WORKER_HEALTH:
        args = (url, settings.heartbeat_healthy_s)
    elif panel == SCHEDULER:
        args = (url, settings.app_path)
    cached = _CACHED[panel]
    return MEMORY.fetch(
        (panel, url),
        lambda: cached(*args),
        retry_after_s=cache_ttl(refresh_interval(panel, settings)),
    )


def clear_panel_caches(*names: str) -> None:
    """Drop the cached data of these panels (all when none are named) for every session.

    Call it after a write (retry, delete, restore) so the next run reads fresh data.
    """
    selected = names or PANEL_NAMES
    unknown = [name for name in selected if name not in _CACHED]
    if unknown:
        raise ValueError(f"unknown panel(s): {', '.join(unknown)}; known: {', '.join(PANEL_NAMES)}")
    for name in selected:
        _CACHED[name].clear()
    MEMORY.forget_failures(tuple(selected))
    db.UNREACHABLE.clear()
