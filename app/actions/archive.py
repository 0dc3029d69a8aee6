"""The archive of deleted jobs: archive-then-delete, and restore as it was.

A deleted job's row, events and recorded errors are kept in `jobdash_deleted_jobs` as jsonb of
the original tables' row types, so a restore re-inserts exactly what was there (ids included)
with `jsonb_populate_record`; a failed job also keeps its failure time (its place in the list).
These functions run inside the caller's transaction and assume the caller has locked the rows
it acts on (see `app/actions/jobs.py`); they never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import psycopg

from jobdash.core.rows import fetch_all

# Copies each job still in one of the given states (already locked by the caller) with its
# events and errors into the archive, then deletes it: events cascade, errors have no foreign
# key so go explicitly. Data-modifying CTEs share one snapshot, so the archive reads the events
# before they go.
ARCHIVE_AND_DELETE = """
WITH victims AS (
    SELECT j.* FROM procrastinate_jobs j
    WHERE j.id = ANY(%(ids)s) AND j.status::text = ANY(%(statuses)s::text[])
), archived AS (
    INSERT INTO jobdash_deleted_jobs
        (job_id, queue_name, task_name, status, job, events, errors, deleted_by, failed_at)
    SELECT v.id, v.queue_name, v.task_name, v.status::text, to_jsonb(v),
           coalesce((SELECT jsonb_agg(to_jsonb(e) ORDER BY e.id)
                       FROM procrastinate_events e WHERE e.job_id = v.id), '[]'::jsonb),
           coalesce((SELECT jsonb_agg(to_jsonb(r) ORDER BY r.id)
                       FROM jobdash_job_errors r WHERE r.job_id = v.id), '[]'::jsonb),
           %(actor)s,
           (SELECT f.failed_at FROM jobdash_failed_jobs f WHERE f.job_id = v.id)
    FROM victims v
    RETURNING job_id
), dropped_errors AS (
    DELETE FROM jobdash_job_errors WHERE job_id IN (SELECT job_id FROM archived)
)
DELETE FROM procrastinate_jobs
WHERE id IN (SELECT job_id FROM archived)
RETURNING id
"""

# Live archives (not yet restored) of the given jobs, locked: a racing restore waits, then
# sees restored_at set and finds nothing.
LOCK_LIVE_ARCHIVES = """
SELECT id, job_id FROM jobdash_deleted_jobs
WHERE job_id = ANY(%(job_ids)s) AND restored_at IS NULL
ORDER BY job_id
FOR UPDATE
"""

# The job row as it was; its worker may be gone since (the foreign key would refuse it), in
# which case the link is dropped exactly as Procrastinate does when a worker row goes.
RESTORE_JOBS = """
INSERT INTO procrastinate_jobs
SELECT r.*
FROM jobdash_deleted_jobs d,
     jsonb_populate_record(
         null::procrastinate_jobs,
         d.job || jsonb_build_object('worker_id', (
             SELECT w.id FROM procrastinate_workers w WHERE w.id = (d.job ->> 'worker_id')::bigint
         ))
     ) r
WHERE d.id = ANY(%(archive_ids)s)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""

RESTORE_EVENTS = """
INSERT INTO procrastinate_events
SELECT r.*
FROM jobdash_deleted_jobs d, jsonb_populate_recordset(null::procrastinate_events, d.events) r
WHERE d.id = ANY(%(archive_ids)s) AND d.job_id = ANY(%(job_ids)s)
"""

RESTORE_ERRORS = """
INSERT INTO jobdash_job_errors
SELECT r.*
FROM jobdash_deleted_jobs d, jsonb_populate_recordset(null::jobdash_job_errors, d.errors) r
WHERE d.id = ANY(%(archive_ids)s) AND d.job_id = ANY(%(job_ids)s)
"""

# A restored failed job is listed again (the insert's trigger) when it failed, not now: the
# time its archive kept, or (archives made before 008) its last move into `failed`.
RESTORE_FAILED_AT = """
UPDATE jobdash_failed_jobs f
SET failed_at = coalesce(d.failed_at, (
        SELECT (ev ->> 'at')::timestamptz FROM jsonb_array_elements(d.events) ev
        WHERE ev ->> 'type' IN ('failed', 'cancelled')
        ORDER BY (ev ->> 'id')::bigint DESC LIMIT 1
    ), f.failed_at)
FROM jobdash_deleted_jobs d
WHERE d.id = ANY(%(archive_ids)s) AND d.job_id = ANY(%(job_ids)s) AND f.job_id = d.job_id
"""

MARK_RESTORED = """
UPDATE jobdash_deleted_jobs SET restored_at = now(), restored_by = %(actor)s
WHERE id = ANY(%(archive_ids)s) AND job_id = ANY(%(job_ids)s)
"""

# Jobs deleted and not restored since: why a job that is gone was skipped.
LIVE_ARCHIVED = (
    "SELECT job_id FROM jobdash_deleted_jobs WHERE job_id = ANY(%(ids)s) AND restored_at IS NULL"
)

# Why a job could not be restored: restored already, or never archived.
RESTORED_BEFORE = """
SELECT DISTINCT job_id FROM jobdash_deleted_jobs
WHERE job_id = ANY(%(job_ids)s) AND restored_at IS NOT NULL
"""


@dataclass(frozen=True)
class RestoreOutcome:
    restored: list[int]
    skipped: dict[int, str]


class _Archive(NamedTuple):
    id: int
    job_id: int


def job_id_column(job_id: int) -> int:
    """The row of a query whose one column is a job id (for fetch_all)."""
    return job_id


# Jobs that may be deleted: finished ones (a waiting or running job is cancelled or aborted).
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled", "aborted")


def archive_and_delete(
    conn: psycopg.Connection,
    job_ids: list[int],
    actor: str,
    statuses: tuple[str, ...] = TERMINAL_STATUSES,
) -> list[int]:
    """Archive then delete those of `job_ids` whose status is one of `statuses`; the ids
    deleted, ascending."""
    if not job_ids:
        return []
    params = {"ids": list(job_ids), "actor": actor, "statuses": list(statuses)}
    return sorted(fetch_all(conn, job_id_column, ARCHIVE_AND_DELETE, params))


def archive_and_delete_failed(
    conn: psycopg.Connection, job_ids: list[int], actor: str
) -> list[int]:
    """Archive then delete those of `job_ids` that are failed; the ids deleted, ascending."""
    return archive_and_delete(conn, job_ids, actor, ("failed",))


def live_archived(conn: psycopg.Connection, job_ids: list[int]) -> set[int]:
    """Those of `job_ids` that were deleted (archived) and not restored since."""
    return set(fetch_all(conn, job_id_column, LIVE_ARCHIVED, {"ids": job_ids}))


def restore_archived(conn: psycopg.Connection, job_ids: list[int], actor: str) -> RestoreOutcome:
    """Put archived jobs back with their events and errors; each live archive is used once."""
    wanted = sorted(set(job_ids))
    if not wanted:
        return RestoreOutcome([], {})
    archives = fetch_all(conn, _Archive, LOCK_LIVE_ARCHIVES, {"job_ids": wanted})
    archive_ids = [archive.id for archive in archives]
    archived_job_ids = {archive.job_id for archive in archives}
    restored: list[int] = []
    if archive_ids:
        restored = sorted(
            fetch_all(conn, job_id_column, RESTORE_JOBS, {"archive_ids": archive_ids})
        )
    if restored:
        params = {"archive_ids": archive_ids, "job_ids": restored, "actor": actor}
        conn.execute(RESTORE_EVENTS, params)
        conn.execute(RESTORE_ERRORS, params)
        conn.execute(RESTORE_FAILED_AT, params)
        conn.execute(MARK_RESTORED, params)
    restored_before = set(fetch_all(conn, job_id_column, RESTORED_BEFORE, {"job_ids": wanted}))
    skipped: dict[int, str] = {}
    for job_id in wanted:
        if job_id in restored:
            continue
        if job_id in archived_job_ids:
            skipped[job_id] = "a job with this id exists"
        elif job_id in restored_before:
            skipped[job_id] = "already restored"
        else:
            skipped[job_id] = "not in the archive"
    return RestoreOutcome(restored, skipped)
