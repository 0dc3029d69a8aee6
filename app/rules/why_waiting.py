""" "Why isn't this job running?" — one line from what the database knows about a waiting job.

Pure: `explain(facts)` takes a small record gathered by app/read/job_facts.py. The reasons are
tried in the order they would hold the job back: a time in the future, a paused queue, no
worker at all or none on its queue, its lock, its workers' free slots, the jobs ahead of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jobdash.app.rules.text import format_duration, relative_time

WAITING_STATES = ("ready", "scheduled")


@dataclass(frozen=True)
class WaitFacts:
    state: str  # the job's state (see app/read/job_filter.py)
    queue: str
    now: datetime
    scheduled_at: datetime | None = None
    queue_paused_at: datetime | None = None
    queue_paused_by: str | None = None
    live_workers: int = 0  # workers whose heartbeat is fresh
    listening_workers: int = 0  # of those, instrumented ones listening to the job's queue
    unknown_workers: int = 0  # live workers not instrumented: which queues they take is unknown
    honouring_workers: int = 0  # listening workers that honour queue pauses
    lock: str | None = None
    lock_holder_id: int | None = None  # the doing job holding the lock
    lock_holder_started_at: datetime | None = None
    lock_first_id: int | None = None  # a waiting job with the same lock that goes first
    ahead: int = 0  # ready jobs of its queue a worker takes before it
    ahead_capped: bool = False  # `ahead` is a lower bound
    busy_jobs: int | None = None  # jobs running on the listening workers
    total_slots: int | None = None  # their concurrency (None when one of them is not known)


def _when(at: datetime, now: datetime) -> str:
    """ "2024-05-01T15:00:00+00:00 (in 3 hours)", "… (5 min ago)"."""
    if at > now:
        return f"{at.isoformat(timespec='seconds')} ({relative_time(at, now)})"
    return f"{at.isoformat(timespec='seconds')} ({format_duration((now - at).total_seconds())} ago)"


def explain(facts: WaitFacts) -> str | None:
    """The reason in one line, or None for a job that is not waiting (not ready/scheduled)."""
    f = facts
    if f.state not in WAITING_STATES:
        return None
    if f.state == "scheduled" and f.scheduled_at is not None and f.scheduled_at > f.now:
        return f"Scheduled for later: it runs at {_when(f.scheduled_at, f.now)}."
    if f.queue_paused_at is not None:
        by = f" by {f.queue_paused_by}" if f.queue_paused_by else ""
        line = (
            f"Its queue {f.queue!r} is paused (since {_when(f.queue_paused_at, f.now)}{by}): "
            "instrumented workers take none of its jobs."
        )
        others = f.listening_workers - f.honouring_workers + f.unknown_workers
        if others > 0:
            line += f" {others} worker(s) that do not honour pauses may still take it."
        return line
    if f.live_workers == 0:
        return "No worker is running (no worker has sent a heartbeat recently)."
    if f.listening_workers == 0:
        if f.unknown_workers:
            return (
                f"No instrumented worker listens to queue {f.queue!r}; "
                f"{f.unknown_workers} uninstrumented worker(s) run, their queues unknown."
            )
        return (
            f"No worker listens to queue {f.queue!r} "
            f"({f.live_workers} worker(s) run, on other queues)."
        )
    if f.lock is not None and f.lock_holder_id is not None:
        running = ""
        if f.lock_holder_started_at is not None:
            took = (f.now - f.lock_holder_started_at).total_seconds()
            running = f" (running for {format_duration(took)})"
        return f"Waiting for lock {f.lock!r} held by job {f.lock_holder_id}{running}."
    if f.lock is not None and f.lock_first_id is not None:
        return f"Waiting for lock {f.lock!r}: job {f.lock_first_id} goes first (same lock)."
    ahead = f"{f.ahead:,}{'+' if f.ahead_capped else ''}"
    if (
        f.total_slots is not None
        and f.busy_jobs is not None
        and f.unknown_workers == 0
        and f.busy_jobs >= f.total_slots
    ):
        line = (
            f"All {f.listening_workers} worker(s) of queue {f.queue!r} are busy "
            f"({f.busy_jobs} of {f.total_slots} slots)"
        )
        return line + (f"; {ahead} job(s) are ahead of it." if f.ahead else ".")
    if f.ahead:
        return (
            f"Behind {ahead} job(s) of queue {f.queue!r} that go first "
            "(higher priority, or the same priority and deferred earlier)."
        )
    return "Nothing the database knows keeps it waiting: a worker should take it at its next poll."
