"""Failed sign-ins per key (a user name, a client address): too many in a window → refused.

In-process and thread-safe; memory is bounded by `max_keys` (the least recently failing keys
are forgotten first). Several replicas each count on their own: the limit per replica holds.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Hashable


class FailureLimiter:
    def __init__(self, limit: int = 5, window_s: float = 300, max_keys: int = 10_000):
        if limit < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("limit, window_s and max_keys must be positive")
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: OrderedDict[Hashable, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: Hashable, now: float | None = None) -> float:
        """Seconds until `key` may try again (0 when it may now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._failures.get(key)
            if failures is None or len(failures) < self.limit:
                return 0.0
            return max(0.0, failures[0] + self.window_s - now)

    def record_failure(self, key: Hashable, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._failures.pop(key, None) or deque(maxlen=self.limit)
            failures.append(now)
            self._failures[key] = failures  # now the most recent
            self._forget_old(now)

    def clear(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)

    def _forget_old(self, now: float) -> None:
        # Keys are ordered by their last failure: stale ones sit at the front.
        while self._failures:
            oldest_key, failures = next(iter(self._failures.items()))
            if len(self._failures) > self.max_keys or failures[-1] + self.window_s <= now:
                del self._failures[oldest_key]
            else:
                break


def refusal_message(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"too many failed sign-ins: try again in {minutes} {unit}"
