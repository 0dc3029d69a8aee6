"""The Queues view's read model: per queue its counts and latency (the dashboard's own
queue statistics), throughput in the last hour (the history rollup), whether it is paused,
and which live workers listen to it and which of them honour a pause.

A worker honours pauses when it is an instrumented Jobdash worker that says so in
jobdash_workers.versions (key `jobdash_controls`); a worker without a jobdash_workers row is
not instrumented: which queues it takes is not known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import psycopg

from jobdash.app.read.dashboard import load_queue_stats
from jobdash.core.rows import fetch_all, fetch_optional, utc

# The capability key instrumented workers publish (jobs/instrumentation/controls.py).
CONTROLS_KEY = "jobdash_controls"

LIVE_WORKERS = """
SELECT w.id, jw.hostname, jw.pid, jw.worker_name, jw.queues, jw.concurrency,
       (jw.worker_id IS NOT NULL) AS instrumented,
       coalesce(jw.versions ? %(controls_key)s, false) AS honours_pauses,
       (SELECT count(*) FROM procrastinate_jobs j
         WHERE j.worker_id = w.id AND j.status = 'doing') AS running
FROM procrastinate_workers w
LEFT JOIN jobdash_workers jw ON jw.worker_id = w.id
WHERE w.last_heartbeat > now() - make_interval(secs => %(live_s)s)
ORDER BY w.id
"""
PAUSES = "SELECT queue_name, paused_at, paused_by FROM jobdash_queue_pauses ORDER BY queue_name"
THROUGHPUT_LAST_HOUR = """
SELECT queue_name, sum(succeeded)::bigint, sum(failed)::bigint
FROM jobdash_history_queue_minute
WHERE bucket > now() - interval '1 hour'
GROUP BY queue_name
"""
ROLLUP_RECENT = """
SELECT coalesce(last_run_at > now() - interval '5 minutes', false) FROM jobdash_rollup_state
"""


@dataclass(frozen=True)
class LiveWorker:
    worker_id: int
    label: str  # host:pid, or "worker #id" when not instrumented
    queues: list[str] | None  # None: every queue (or unknown when not instrumented)
    concurrency: int | None
    running: int
    instrumented: bool
    honours_pauses: bool

    def listens_to(self, queue: str) -> bool:
        return self.instrumented and (self.queues is None or queue in self.queues)


class _WorkerRow(NamedTuple):
    id: int
    hostname: str | None
    pid: int | None
    worker_name: str | None
    queues: list[str] | None
    concurrency: int | None
    instrumented: bool
    honours_pauses: bool
    running: int


class _PauseRow(NamedTuple):
    queue_name: str
    paused_at: datetime
    paused_by: str


class _ThroughputRow(NamedTuple):
    queue_name: str
    succeeded: int | None
    failed: int | None


class _RecentRow(NamedTuple):
    recent: bool


def load_live_workers(conn: psycopg.Connection, live_s: float = 120) -> list[LiveWorker]:
    params = {"controls_key": CONTROLS_KEY, "live_s": float(live_s)}
    rows = fetch_all(conn, _WorkerRow, LIVE_WORKERS, params)
    workers = []
    for worker_id, host, pid, name, queues, concurrency, instrumented, honours, running in rows:
        label = f"{host}:{pid}" if host else f"worker #{worker_id}"
        if name and host:
            label += f" ({name})"
        workers.append(
            LiveWorker(
                int(worker_id), label, list(queues) if queues is not None else None,
                concurrency, int(running), bool(instrumented), bool(honours),
            )
        )  # fmt: skip
    return workers


@dataclass(frozen=True)
class QueueOverview:
    name: str
    ready: int
    scheduled: int
    doing: int
    failed: int
    latency_s: float | None  # age of the oldest ready job
    succeeded_last_hour: int | None  # None: no history recorded
    failed_last_hour: int | None
    paused_at: datetime | None
    paused_by: str | None
    listening: list[LiveWorker] = field(default_factory=list)
    unknown_workers: int = 0  # live uninstrumented workers (their queues are not known)

    @property
    def honouring(self) -> list[LiveWorker]:
        return [w for w in self.listening if w.honours_pauses]

    @property
    def not_honouring(self) -> list[LiveWorker]:
        return [w for w in self.listening if not w.honours_pauses]


@dataclass(frozen=True)
class QueuesView:
    queues: list[QueueOverview]
    workers: list[LiveWorker]
    history_recorded: bool  # a rollup ran in the last 5 minutes


def load_queues(conn: psycopg.Connection, live_s: float = 120) -> QueuesView:
    stats = load_queue_stats(conn)
    workers = load_live_workers(conn, live_s)
    pauses = {name: (at, by) for name, at, by in fetch_all(conn, _PauseRow, PAUSES)}
    throughput = {
        name: (int(ok or 0), int(bad or 0))
        for name, ok, bad in fetch_all(conn, _ThroughputRow, THROUGHPUT_LAST_HOUR)
    }
    row = fetch_optional(conn, _RecentRow, ROLLUP_RECENT)
    recorded = bool(row and row.recent)
    rows = {q.name: q for q in stats.queues}
    names = sorted(set(rows) | set(pauses) | {q for w in workers for q in (w.queues or [])})
    unknown = sum(1 for w in workers if not w.instrumented)
    queues = []
    for name in names:
        q = rows.get(name)
        paused = pauses.get(name)
        done = throughput.get(name, (0, 0) if recorded else (None, None))
        queues.append(
            QueueOverview(
                name=name,
                ready=q.ready if q else 0,
                scheduled=q.scheduled if q else 0,
                doing=q.doing if q else 0,
                failed=q.failed if q else 0,
                latency_s=q.oldest_ready_age_s if q else None,
                succeeded_last_hour=done[0],
                failed_last_hour=done[1],
                paused_at=utc(paused[0]) if paused else None,
                paused_by=paused[1] if paused else None,
                listening=[w for w in workers if w.listens_to(name)],
                unknown_workers=unknown,
            )
        )
    return QueuesView(queues, workers, recorded)
