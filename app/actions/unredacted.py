"""An admin's look at a job's args as stored, with nothing of JOBDASH_REDACT_ARGS hidden.

Every loader redacts args (app/read/args.py); this is the one way round that, so it lives with
the actions: the role is checked here, where the read happens (admin; read-only mode refuses
it too), the read is never cached, and the audit row (action `view_unredacted_args`, the job
id, the actor) is written in the same transaction as the read.
"""

from __future__ import annotations

from typing import NamedTuple

import psycopg

from jobdash.app.actions.jobs import _ensure_idle, _write_audit, authorize
from jobdash.core.auth.identity import Action, Identity
from jobdash.core.errors import ActionError
from jobdash.core.jsontypes import Json
from jobdash.core.rows import fetch_optional

# The live job's args, else those of its archived copy (a deleted job's detail shows them too).
UNREDACTED_ARGS = """
SELECT args FROM procrastinate_jobs WHERE id = %(id)s
UNION ALL
SELECT job -> 'args' FROM jobdash_deleted_jobs WHERE job_id = %(id)s AND restored_at IS NULL
LIMIT 1
"""


class _Args(NamedTuple):
    # A row, not the bare value: args read as None (SQL or JSON null) are not "no such job".
    args: Json


def read_unredacted_args(conn: psycopg.Connection, job_id: int, actor: Identity) -> Json:
    """The job's args exactly as stored; PermissionDenied / ReadOnlyError for anyone but an
    admin (nothing read, nothing written), ActionError when the job is unknown (not audited:
    nothing was shown)."""
    name = authorize(actor, Action.VIEW_UNREDACTED_ARGS)
    _ensure_idle(conn)
    with conn.transaction():
        row = fetch_optional(conn, _Args, UNREDACTED_ARGS, {"id": job_id})
        if row is None:
            raise ActionError(f"job {job_id} was not found (nor in the archive of deleted jobs)")
        _write_audit(conn, name, Action.VIEW_UNREDACTED_ARGS, [job_id], 1, {}, None)
    return row.args
