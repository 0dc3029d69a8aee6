"""The failed-count ledger and the failed list (migrations/006_light_hot_path.sql,
008_failed_jobs.sql): compaction and recount.

Triggers on procrastinate_jobs append (queue, task, +/-n) rows to `jobdash_failed_counts` for
moves into and out of `failed`, and list the failed jobs in `jobdash_failed_jobs`; the
dashboard sums the one and reads the other. Compaction collapses the rows into one per
queue so reading stays a few rows; it is safe at any time, next to running workers.
"""

from __future__ import annotations

import logging

import psycopg

logger = logging.getLogger(__name__)


def compact_failed_counts(conn: psycopg.Connection) -> int:
    """Collapse the ledger to one row per queue; the number of rows removed (0 when another
    compaction was running). Commits when `conn` is in autocommit mode."""
    row = conn.execute("select jobdash_compact_failed_counts()").fetchone()
    return int(row[0]) if row else 0


def recount_failed(conn: psycopg.Connection) -> int:
    """Rebuild the ledger and the failed list from procrastinate_jobs (after writes with
    triggers off, or writes our trigger gave up on); the total."""
    row = conn.execute("select jobdash_recount_failed()").fetchone()
    return int(row[0]) if row else 0


def compact_quietly(conn: psycopg.Connection) -> None:
    """Compaction for the maintenance task: housekeeping never makes the task fail."""
    try:
        removed = compact_failed_counts(conn)
        logger.debug("failed-count ledger: %s rows compacted", removed)
    except psycopg.Error:
        logger.exception("compacting the failed-count ledger failed")
