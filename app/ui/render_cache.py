"""What panels build from loaded data (tables, chart specs), built once per data version and
shared by every session drawing that data.

The SharedCache hands every session the same object until the next load, so the object's
identity is the data version: a value is rebuilt when the data object changes or the `key`
(display zone, a time bucket, ...) differs. Fifty tabs of the same panel then cost one build
per refresh instead of fifty. Values must not be mutated by their users.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class RenderCache:
    def __init__(self, max_entries: int = 64) -> None:
        self._lock = threading.Lock()
        self._max_entries = max_entries
        # (what, id(data), key) -> (data, value): `data` is kept to check identity (an id can
        # be reused once the object is gone) and so the id stays taken while the entry lives.
        self._entries: OrderedDict[tuple[str, int, Hashable], tuple[Any, Any]] = OrderedDict()

    def get(self, what: str, data: object, key: Hashable, build: Callable[[], T]) -> T:
        entry_key = (what, id(data), key)
        with self._lock:
            entry = self._entries.get(entry_key)
            if entry is not None and entry[0] is data:
                self._entries.move_to_end(entry_key)
                return cast(T, entry[1])  # stored by a `build` of the same key
        value = build()  # outside the lock: two sessions may build the same value once each
        with self._lock:
            self._entries[entry_key] = (data, value)
            self._entries.move_to_end(entry_key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return value


# Few entries: only the latest step of each panel and zone is drawn again.
RENDERED = RenderCache(max_entries=16)
