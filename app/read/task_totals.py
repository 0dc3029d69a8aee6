"""Finished jobs per (queue, task, outcome) as Prometheus counters, from the minute rollups.

Prometheus counters must only go up (a drop reads as a reset, and `increase()` then counts
the whole total again). A sum over the retained rollups would drop each time retention deletes
old buckets, and would read months of rows on every scrape. So the totals count from the
minute this process first read them (a counter that starts at 0 with the process, which
Prometheus handles as it handles any restart) and are kept in two parts:
- frozen: buckets older than FREEZE_AFTER, added once and never re-read (the rollup
  recomputes only its trailing window, 10 minutes, so these no longer change);
- live: the last FREEZE_AFTER of buckets, re-read on each load (~15 rows per series).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

import psycopg

from jobdash.core.rows import fetch_all, fetch_one

FREEZE_AFTER = timedelta(minutes=15)
OUTCOMES = ("succeeded", "failed", "retried")

TASK_TOTALS_SQL = """
SELECT queue_name, task_name,
       coalesce(sum(succeeded) FILTER (WHERE bucket < %(freeze)s), 0)::bigint,
       coalesce(sum(failed) FILTER (WHERE bucket < %(freeze)s), 0)::bigint,
       coalesce(sum(retried) FILTER (WHERE bucket < %(freeze)s), 0)::bigint,
       coalesce(sum(succeeded) FILTER (WHERE bucket >= %(freeze)s), 0)::bigint,
       coalesce(sum(failed) FILTER (WHERE bucket >= %(freeze)s), 0)::bigint,
       coalesce(sum(retried) FILTER (WHERE bucket >= %(freeze)s), 0)::bigint
  FROM jobdash_history_minute
 WHERE bucket >= %(since)s
 GROUP BY 1, 2
"""
NOW_MINUTE_SQL = "SELECT date_trunc('minute', now())"

Series = tuple[str, str, str]  # (queue, task, outcome)


class _Minute(NamedTuple):
    minute: datetime


class _TotalsRow(NamedTuple):
    """A row of TASK_TOTALS_SQL: the frozen counts of OUTCOMES, then the live ones."""

    queue_name: str
    task_name: str
    frozen_succeeded: int
    frozen_failed: int
    frozen_retried: int
    live_succeeded: int
    live_failed: int
    live_retried: int


@dataclass
class TaskTotals:
    """Running totals for one database; `load` is safe to call from several threads."""

    since: datetime | None = None  # the first bucket counted
    frozen_until: datetime | None = None  # buckets before this are in `frozen`
    frozen: dict[Series, int] = field(default_factory=lambda: defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load(self, conn: psycopg.Connection) -> dict[Series, int]:
        with self._lock:
            (minute,) = fetch_one(conn, _Minute, NOW_MINUTE_SQL)
            if self.since is None:
                self.since = self.frozen_until = minute
            assert self.frozen_until is not None
            freeze = max(self.frozen_until, minute - FREEZE_AFTER)
            rows = fetch_all(
                conn, _TotalsRow, TASK_TOTALS_SQL, {"since": self.frozen_until, "freeze": freeze}
            )
            live: dict[Series, int] = defaultdict(int)
            for queue, task, *counts in rows:
                for i, outcome in enumerate(OUTCOMES):
                    self.frozen[(queue, task, outcome)] += int(counts[i])
                    live[(queue, task, outcome)] += int(counts[i + len(OUTCOMES)])
            self.frozen_until = freeze
            keys = set(self.frozen) | set(live)
            return {key: self.frozen.get(key, 0) + live.get(key, 0) for key in sorted(keys)}
