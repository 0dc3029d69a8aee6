"""The Locks view: each lock of open jobs with the doing job holding it and the jobs waiting
behind it (in the order Procrastinate's fetch takes them), and the queueing locks held by
todo jobs. Reads only open jobs (Procrastinate's (id, lock) index of todo/doing jobs and its
unique queueing-lock index), so it is bounded by live work, not history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import psycopg

from jobdash.core.rows import fetch_all, utc

LIMIT = 500
WAITING_SHOWN = 10

LOCKS = """
SELECT l.lock, l.holder, h.task_name, h.queue_name,
       (SELECT max(e.at) FROM procrastinate_events e
         WHERE e.job_id = l.holder AND e.type = 'started') AS holder_started_at,
       l.waiting, l.waiting_ids
FROM (
    SELECT j.lock,
           max(j.id) FILTER (WHERE j.status = 'doing') AS holder,
           count(*) FILTER (WHERE j.status = 'todo') AS waiting,
           (array_agg(j.id ORDER BY j.priority DESC, j.id)
              FILTER (WHERE j.status = 'todo'))[1:%(shown)s] AS waiting_ids
    FROM procrastinate_jobs j
    WHERE j.status IN ('todo', 'doing') AND j.lock IS NOT NULL
    GROUP BY j.lock
) l
LEFT JOIN procrastinate_jobs h ON h.id = l.holder
ORDER BY l.holder IS NULL, l.waiting DESC, l.lock
LIMIT %(limit)s
"""
QUEUEING_LOCKS = """
SELECT j.queueing_lock, j.id, j.task_name, j.queue_name, j.scheduled_at
FROM procrastinate_jobs j
WHERE j.status = 'todo' AND j.queueing_lock IS NOT NULL
ORDER BY j.queueing_lock
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class LockRow:
    lock: str
    holder_id: int | None  # the doing job holding it (None: nobody runs, jobs wait for a slot)
    holder_task: str | None
    holder_queue: str | None
    holder_started_at: datetime | None
    waiting: int
    waiting_ids: list[int]  # the first ones, in the order they will run


@dataclass(frozen=True)
class QueueingLockRow:
    queueing_lock: str
    job_id: int
    task: str
    queue: str
    scheduled_at: datetime | None


@dataclass(frozen=True)
class LocksView:
    locks: list[LockRow]
    queueing_locks: list[QueueingLockRow]
    limit: int


class _LockRow(NamedTuple):
    lock: str
    holder: int | None
    task_name: str | None
    queue_name: str | None
    holder_started_at: datetime | None
    waiting: int
    waiting_ids: list[int] | None


class _QueueingLockRow(NamedTuple):
    queueing_lock: str
    id: int
    task_name: str
    queue_name: str
    scheduled_at: datetime | None


def load_locks(conn: psycopg.Connection, limit: int = LIMIT) -> LocksView:
    params = {"limit": limit, "shown": WAITING_SHOWN}
    locks = [
        LockRow(lock, holder, task, queue, utc(started), int(waiting), list(ids or []))
        for lock, holder, task, queue, started, waiting, ids in fetch_all(
            conn, _LockRow, LOCKS, params
        )
    ]
    queueing = [
        QueueingLockRow(qlock, int(job_id), task, queue, utc(at))
        for qlock, job_id, task, queue, at in fetch_all(
            conn, _QueueingLockRow, QUEUEING_LOCKS, params
        )
    ]
    return LocksView(locks, queueing, limit)
