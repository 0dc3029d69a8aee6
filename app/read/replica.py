"""How far behind the primary the database the loaders read is (JOBDASH_READ_DATABASE_URL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import psycopg

from jobdash.core.rows import fetch_one

# pg_last_xact_replay_timestamp(): the commit time of the last transaction replayed. On a quiet
# primary it ages although nothing is missing, so a lag is only a lag while the primary writes.
REPLICA_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery()
            THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END
"""


class _ReplicaRow(NamedTuple):
    in_recovery: bool
    lag_s: float | None


@dataclass(frozen=True)
class ReplicaStatus:
    in_recovery: bool  # False: the "replica" is a primary (nothing to lag behind)
    lag_s: float | None  # None on a primary, or on a standby that replayed nothing yet


def load_replica_status(conn: psycopg.Connection) -> ReplicaStatus:
    in_recovery, lag_s = fetch_one(conn, _ReplicaRow, REPLICA_SQL)
    return ReplicaStatus(
        in_recovery=bool(in_recovery), lag_s=max(0.0, lag_s) if lag_s is not None else None
    )


def replica_text(status: ReplicaStatus | None, error: str | None = None) -> str:
    """The footer's line about JOBDASH_READ_DATABASE_URL (pure)."""
    if status is None:
        return f"Reading from a replica: its lag is unknown ({error or 'not read yet'})."
    if not status.in_recovery:
        return "Reading from JOBDASH_READ_DATABASE_URL, which is not a standby: no lag."
    if status.lag_s is None:
        return "Reading from a replica that has replayed nothing yet."
    return f"Reading from a replica, {status.lag_s:.0f} s behind the primary."
