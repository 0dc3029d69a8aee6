"""One cache for every read the dashboard makes, shared by all sessions of the process.

Why the dashboard never falls over, and why fifty tabs cost about what one costs:
- A key's value is reused for `ttl_s` (just under the refresh interval of what shows it), so all
  sessions of a process share one query per interval. One load per key runs at a time; while it
  runs, other sessions get the previous value at once instead of waiting for it.
- A failed load (database down, statement timeout, a bug) keeps the last good value, marked
  stale since the first failure with the reason; further attempts are spaced by `retry_after_s`
  so viewers do not hammer a sick database. The first successful load clears the mark.
- It is a plain object of this process: nothing a browser sends can clear it (Streamlit's
  `clear_cache` message reaches only st.cache_data / st.cache_resource). Actions invalidate it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from jobdash.app.rules.text import clock_utc
from jobdash.core.errors import describe_error

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Covariant: a Result[QueueStats] is a Result[object] to what reads only its staleness.
T_co = TypeVar("T_co", covariant=True)
Key = tuple[Hashable, ...]


@dataclass(frozen=True)
class Result(Generic[T_co]):
    """The freshest good data there is for a key, and why it is stale when it is."""

    data: T_co | None
    loaded_at: float | None
    stale_since: float | None = None
    error: str | None = None

    @property
    def is_stale(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class _Entry:
    data: Any
    loaded_at: float
    expired: bool = False  # invalidated: reload now, but keep it as the last good data

    def fresh(self, now: float, ttl_s: float) -> bool:
        return not self.expired and now - self.loaded_at < ttl_s


@dataclass(frozen=True)
class _Failure:
    since: float
    last_attempt: float
    reason: str


def cache_ttl(interval_s: float) -> float:
    """Just below the interval, so each tick of a viewer finds data at most one interval old."""
    return max(interval_s * 0.5, interval_s - 0.5)


class SharedCache:
    """Values by key (the key's first item names its source, for `invalidate`)."""

    def __init__(self, clock: Callable[[], float] = time.time, max_entries: int = 512) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._failures: dict[Key, _Failure] = {}
        self._loading: dict[Key, threading.Lock] = {}

    def fetch(
        self,
        key: Key,
        load: Callable[[], T],
        *,
        ttl_s: float,
        retry_after_s: float | None = None,
    ) -> Result[T]:
        retry_after = ttl_s if retry_after_s is None else retry_after_s
        entry, failure, gate = self._state(key)
        now = self._clock()
        if failure is None and entry is not None and entry.fresh(now, ttl_s):
            return Result(entry.data, entry.loaded_at)
        if failure is not None and now - failure.last_attempt < retry_after:
            return self._stale(entry, failure)
        if not gate.acquire(blocking=entry is None):
            # Another session is loading it: the previous value is good enough meanwhile.
            assert entry is not None
            return (
                Result(entry.data, entry.loaded_at)
                if failure is None
                else self._stale(entry, failure)
            )
        try:
            entry, failure, _ = self._state(key)
            now = self._clock()
            if failure is None and entry is not None and entry.fresh(now, ttl_s):
                return Result(entry.data, entry.loaded_at)  # loaded while we waited
            return self._load(key, load, entry, failure, now)
        finally:
            gate.release()

    def invalidate(self, *names: Hashable) -> None:
        """Make the next fetch of these sources (all when none are named) load at once, the
        values staying as last good data: after an action, every session sees what it did."""
        with self._lock:
            for key in [k for k in self._failures if not names or k[0] in names]:
                del self._failures[key]
            for key, entry in self._entries.items():
                if not names or key[0] in names:
                    self._entries[key] = _Entry(entry.data, entry.loaded_at, expired=True)

    def _state(self, key: Key) -> tuple[_Entry | None, _Failure | None, threading.Lock]:
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
            return self._entries.get(key), self._failures.get(key), gate

    def _load(
        self,
        key: Key,
        load: Callable[[], T],
        entry: _Entry | None,
        failure: _Failure | None,
        now: float,
    ) -> Result[T]:
        try:
            data = load()
        except Exception as exc:
            failure = _Failure(failure.since if failure else now, now, describe_error(exc))
            with self._lock:
                self._failures[key] = failure
            logger.warning("%s: load failed, showing last good data: %s", key[0], failure.reason)
            return self._stale(entry, failure)
        loaded = _Entry(data, self._clock())
        with self._lock:
            self._entries[key] = loaded
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                old_key, _ = self._entries.popitem(last=False)
                self._loading.pop(old_key, None)
            recovered = self._failures.pop(key, None)
        if recovered is not None:
            logger.warning("%s: recovered (stale since %s)", key[0], clock_utc(recovered.since))
        return Result(loaded.data, loaded.loaded_at)

    @staticmethod
    def _stale(entry: _Entry | None, failure: _Failure) -> Result[Any]:
        return Result(
            data=entry.data if entry else None,
            loaded_at=entry.loaded_at if entry else None,
            stale_since=failure.since,
            error=failure.reason,
        )
