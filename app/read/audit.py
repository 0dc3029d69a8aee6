"""The audit log of operator actions, newest first (the Recent actions page and its CSV)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

import psycopg

from jobdash.core.jsontypes import Json
from jobdash.core.rows import fetch_all, utc

LIST_AUDIT_LOG = """
SELECT id, at, actor, action, done, skipped, job_ids, filter, details
FROM jobdash_audit_log
WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)
  AND (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
  AND (%(job_id)s::bigint IS NULL OR %(job_id)s = ANY(job_ids))
  AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s)
ORDER BY at DESC, id DESC
LIMIT %(limit)s
"""
AUDIT_HEADER = ["id", "at", "actor", "action", "done", "skipped", "job_ids", "filter", "details"]


class AuditEntry(TypedDict):
    """A row of the audit log (its keys: AUDIT_HEADER); `at` in UTC."""

    id: int
    at: datetime
    actor: str
    action: str
    done: int
    skipped: int
    job_ids: list[int]
    filter: dict[str, Json] | None
    details: dict[str, Json]


def _entry(
    id: int,
    at: datetime,
    actor: str,
    action: str,
    done: int,
    skipped: int,
    job_ids: list[int],
    filter: dict[str, Json] | None,
    details: dict[str, Json],
) -> AuditEntry:
    """A row of LIST_AUDIT_LOG."""
    return AuditEntry(
        id=id,
        at=utc(at),
        actor=actor,
        action=action,
        done=done,
        skipped=skipped,
        job_ids=job_ids,
        filter=filter,
        details=details,
    )


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    job_id: int | None = None
    since: datetime | None = None


def list_audit_log(
    conn: psycopg.Connection,
    audit_filter: AuditFilter = AuditFilter(),
    limit: int = 200,
    before_id: int | None = None,
) -> list[AuditEntry]:
    params = {
        "actor": audit_filter.actor,
        "action": audit_filter.action,
        "since": audit_filter.since,
        "job_id": audit_filter.job_id,
        "limit": limit,
        "before_id": before_id,
    }
    return fetch_all(conn, _entry, LIST_AUDIT_LOG, params)
