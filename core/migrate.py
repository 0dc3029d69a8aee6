"""`jobdash migrate`: Procrastinate's schema when absent, then our numbered SQL files."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field

import psycopg
from procrastinate.schema import SchemaManager

from jobdash.core.database import connect
from jobdash.core.errors import MigrationError

# Arbitrary, fixed: serialises concurrent `jobdash migrate` runs.
MIGRATION_LOCK_KEY = 0x6A6F6264  # "jobd"

# Objects the installed Procrastinate needs, and the migration that created each (oldest first).
REQUIRED_PROCRASTINATE_OBJECTS = [
    ("procrastinate_workers", "table", "03.01.00_01_pre_add_heartbeat.sql"),
    (
        "procrastinate_retry_job_v2",
        "function",
        "03.04.00_01_pre_add_retry_failed_job_procedure.sql",
    ),
]



@dataclass
class MigrationReport:
    procrastinate_schema_applied: bool = False
    applied: list[str] = field(default_factory=list)


def migration_files() -> list[tuple[str, str]]:
    """(name, sql) of our migrations, in the order their numbers give."""
    folder = importlib.resources.files("jobdash.migrations")
    files = sorted(f for f in folder.iterdir() if f.name.endswith(".sql"))
    return [(f.name, f.read_text(encoding="utf-8")) for f in files]


def _missing_procrastinate_migrations(conn: psycopg.Connection) -> list[str]:
    missing = []
    for name, kind, migration in REQUIRED_PROCRASTINATE_OBJECTS:
        if kind == "table":
            row = conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()
        else:
            row = conn.execute(
                "select exists (select 1 from pg_proc where proname = %s)", (name,)
            ).fetchone()
        if not (row and row[0]):
            missing.append(migration)
    return missing


def pending_migrations(conninfo: str) -> list[str]:
    """What `migrate` would still apply ("procrastinate schema" first when it is absent)."""
    with connect(conninfo, application_name="jobdash-migrate") as conn:
        row = conn.execute(
            "select to_regclass('procrastinate_jobs') is not null,"
            " to_regclass('jobdash_schema_migrations') is not null"
        ).fetchone()
        has_procrastinate, has_ours = row if row else (False, False)
        applied = (
            {r[0] for r in conn.execute("select name from jobdash_schema_migrations")}
            if has_ours
            else set()
        )
    pending = [] if has_procrastinate else ["procrastinate schema"]
    return pending + [name for name, _ in migration_files() if name not in applied]


def migrate(conninfo: str) -> MigrationReport:
    report = MigrationReport()
    with connect(conninfo, application_name="jobdash-migrate") as conn:
        conn.execute("select pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            _ensure_procrastinate_schema(conn, report)
            _apply_our_migrations(conn, report)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return report


def _ensure_procrastinate_schema(conn: psycopg.Connection, report: MigrationReport) -> None:
    row = conn.execute("select to_regclass('procrastinate_jobs') is not null").fetchone()
    if row and row[0]:
        missing = _missing_procrastinate_migrations(conn)
        if missing:
            raise MigrationError(
                "Procrastinate's schema in this database is older than the installed "
                "procrastinate needs; apply its migrations from "
                f"{missing[0]} on (see `procrastinate schema --migrations-path`), then run "
                "`jobdash migrate` again"
            )
        return
    with conn.transaction():
        # apply_schema() is not idempotent, hence the to_regclass check above.
        conn.execute(SchemaManager.get_schema())
    report.procrastinate_schema_applied = True


def _apply_our_migrations(conn: psycopg.Connection, report: MigrationReport) -> None:
    conn.execute(
        """
        create table if not exists jobdash_schema_migrations (
            name text primary key,
            applied_at timestamptz not null default now()
        )
        """
    )
    applied = {row[0] for row in conn.execute("select name from jobdash_schema_migrations")}
    for name, sql in migration_files():
        if name in applied:
            continue
        with conn.transaction():
            conn.execute(sql)
            conn.execute("insert into jobdash_schema_migrations (name) values (%s)", (name,))
        report.applied.append(name)
