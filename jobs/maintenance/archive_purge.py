"""Purging the archive of deleted jobs after its retention (JOBDASH_ARCHIVE_RETENTION_DAYS)."""

from __future__ import annotations

import math

import psycopg

PURGE_ARCHIVED = (
    "DELETE FROM jobdash_deleted_jobs WHERE deleted_at < now() - make_interval(days => %s)"
)


def purge_archived_jobs(conn: psycopg.Connection, retention_days: float) -> int:
    """Delete archives older than `retention_days`; the number of archives purged.

    make_interval takes whole days: a fraction is rounded up, so nothing goes early.
    """
    if retention_days <= 0:
        raise ValueError("retention_days must be greater than 0")
    with conn.transaction():
        cursor = conn.execute(PURGE_ARCHIVED, (math.ceil(retention_days),))
    return cursor.rowcount
