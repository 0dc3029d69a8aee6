from __future__ import annotations

import threading

import psycopg
import pytest

from jobdash.core.errors import MigrationError
from jobdash.core.migrate import migrate, migration_files, pending_migrations


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select tablename from pg_tables where schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_migrate_empty_database_applies_procrastinate_and_ours(empty_database_url):
    report = migrate(empty_database_url)
    assert report.procrastinate_schema_applied
    assert report.applied == [name for name, _ in migration_files()]
    tables = _tables(empty_database_url)
    assert {"procrastinate_jobs", "jobdash_job_errors", "jobdash_workers"} <= tables


def test_pending_migrations_name_what_migrate_would_apply(empty_database_url, database_url):
    ours = [name for name, _ in migration_files()]
    assert pending_migrations(empty_database_url) == ["procrastinate schema", *ours]
    assert pending_migrations(database_url) == []


def test_migrate_again_does_nothing(database_url):
    report = migrate(database_url)
    assert not report.procrastinate_schema_applied
    assert report.applied == []


def test_concurrent_migrations_are_serialised(empty_database_url):
    reports, errors = [], []

    def run():
        try:
            reports.append(migrate(empty_database_url))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.procrastinate_schema_applied for r in reports) == 1
    assert sorted(len(r.applied) for r in reports) == [0, 0, 0, len(migration_files())]


def test_old_procrastinate_schema_is_refused_with_the_migration_to_apply(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("drop function procrastinate_retry_job_v2")
    with pytest.raises(MigrationError, match="03.04.00_01_pre_add_retry_failed_job_procedure"):
        migrate(database_url)


def test_migration_failure_leaves_no_partial_state(empty_database_url, monkeypatch):
    import jobdash.core.migrate as m

    good = migration_files()
    broken = ("999_broken.sql", "create table jobdash_x (a int); select 1/0;")
    monkeypatch.setattr(m, "migration_files", lambda: [*good, broken])
    with pytest.raises(psycopg.errors.DivisionByZero):
        m.migrate(empty_database_url)
    assert "jobdash_x" not in _tables(empty_database_url)
    # The migrations before the broken one stay applied.
    with psycopg.connect(empty_database_url) as conn:
        names = [r[0] for r in conn.execute("select name from jobdash_schema_migrations")]
    assert names == [n for n, _ in good]
