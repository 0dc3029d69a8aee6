"""The migration runner: what it applies, serialisation, resumption, lock_timeout and retries."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from jobdash.core.errors import MigrationError
from jobdash.core.schema import load_migrations, migrate, migration_files, pending_migrations
from tests.migrate_helpers import (
    TEST_INDEX,
    TEST_INDEX_MIGRATION,
    Queue,
    apply_procrastinate_schema,
    failed_list_mismatches,
    jobdash_objects,
    ledger_mismatches,
    poll_until,
    schema_dump,
)

DATA = Path(__file__).resolve().parent / "data"


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select tablename from pg_tables where schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def _recorded(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("select name from jobdash_schema_migrations order by 1")]


@pytest.fixture
def procrastinate_url(empty_database_url):
    """A fresh database with Procrastinate's schema only."""
    apply_procrastinate_schema(empty_database_url)
    return empty_database_url


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


def test_a_database_with_the_old_hot_path_objects_converges(procrastinate_url, database_url):
    # Installs from before 006 ran 002's old content (a finishes table kept by a trigger,
    # statement-level ledger triggers, an index of every open job): 006 replaces it all.
    old_002 = (DATA / "migration_002_before_light_hot_path.sql").read_text()
    earlier = [
        (name, old_002 if name.startswith("002_") else sql)
        for name, sql in migration_files()
        if name < "006"
    ]
    migrate(procrastinate_url, migrations=load_migrations(earlier))
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        Queue(conn).defer(20)
        conn.execute("update procrastinate_jobs set status = 'failed' where id % 3 = 0")
    assert pending_migrations(procrastinate_url) == [
        name for name, _ in migration_files() if name >= "006"
    ]
    migrate(procrastinate_url)
    assert jobdash_objects(procrastinate_url) == jobdash_objects(database_url)
    with psycopg.connect(procrastinate_url) as conn:
        assert ledger_mismatches(conn) == {}
        assert failed_list_mismatches(conn) == {}


def test_an_install_from_before_the_failed_list_lists_its_failed_jobs(
    procrastinate_url, database_url
):
    """A 007 database (003 still built its three indexes on Procrastinate's tables) with failed
    jobs: 008 lists each one at the time of its last move into failed, drops the indexes, and
    ends with the objects of a fresh install."""
    old_003 = (DATA / "migration_003_before_failed_list.sql").read_text()
    earlier = [
        (name, old_003 if name.startswith("003_") else sql)
        for name, sql in migration_files()
        if name < "008"
    ]
    migrate(procrastinate_url, migrations=load_migrations(earlier))
    indexes = ["jobdash_events_failure_at_idx", "jobdash_events_job_failure_idx",
               "jobdash_jobs_failed_id_idx"]
    present = "select count(*) from unnest(%s::text[]) i where to_regclass(i) is not null"
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        assert conn.execute(present, (indexes,)).fetchone() == (3,)
        queue = Queue(conn)
        ids = queue.defer(30)
        for _ in ids:
            job = queue.fetch()
            assert job is not None
            queue.finish(job, "failed" if job % 3 else "succeeded")
        # Failures at known, distinct times; one job failed twice (listed at the second).
        conn.execute("update procrastinate_events set at = at - job_id * interval '1 hour'"
                     " where type = 'failed'")
        twice = ids[1]
        queue.conn.execute("select procrastinate_retry_job_v2(%s, now(), null, null, null)",
                           (twice,))
        assert queue.fetch() == twice
        queue.finish(twice, "failed")
        # A job failed from todo (Procrastinate writes 'cancelled'), one with no event at all.
        from_todo = queue.defer(1)[0]
        conn.execute("update procrastinate_jobs set status = 'failed' where id = %s",
                     (from_todo,))
        conn.execute("delete from procrastinate_events where job_id = %s", (ids[3],))
        expected = dict(conn.execute(
            "select j.id, (select e.at from procrastinate_events e where e.job_id = j.id"
            " and e.type in ('failed', 'cancelled') order by e.id desc limit 1)"
            " from procrastinate_jobs j where j.status = 'failed'"
        ).fetchall())
    assert len(expected) == 21 and expected[ids[3]] is None
    assert pending_migrations(procrastinate_url) == [
        name for name, _ in migration_files() if name >= "008"
    ]
    migrate(procrastinate_url, batch_size=7)
    assert jobdash_objects(procrastinate_url) == jobdash_objects(database_url)
    with psycopg.connect(procrastinate_url) as conn:
        assert conn.execute(present, (indexes,)).fetchone() == (0,)
        assert failed_list_mismatches(conn) == {}
        listed = dict(conn.execute("select job_id, failed_at from jobdash_failed_jobs"))
        now = conn.execute("select now()").fetchone()[0]
    assert {job: at for job, at in listed.items() if job != ids[3]} == {
        job: at for job, at in expected.items() if job != ids[3]
    }
    assert abs((now - listed[ids[3]]).total_seconds()) < 60  # no event, no error: migrated at


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


def test_every_step_is_idempotent_so_running_a_migration_again_is_the_resume(database_url):
    """Re-running every step over a complete schema (what resuming from the first step does)
    succeeds and changes nothing."""
    before = schema_dump(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from jobdash_schema_migrations")
    assert migrate(database_url).applied == [name for name, _ in migration_files()]
    assert schema_dump(database_url) == before


def test_a_failing_step_leaves_what_the_next_run_completes(procrastinate_url):
    good = migration_files()
    broken = [
        *good,
        ("999_broken.sql", "-- step: a table\nCREATE TABLE IF NOT EXISTS jobdash_x (a int);\n"
         "-- step: then a failure\nSELECT 1/0;\n"),
    ]
    with pytest.raises(MigrationError, match=r"999_broken.sql step 2/2 \(then a failure\) "
                       "failed: division by zero.*resumes"):
        migrate(procrastinate_url, migrations=load_migrations(broken))
    # Earlier migrations are recorded, the failed one is not, its first step stays done.
    assert _recorded(procrastinate_url) == [name for name, _ in good]
    assert "jobdash_x" in _tables(procrastinate_url)
    fixed = [*good, ("999_broken.sql", broken[-1][1].replace("SELECT 1/0", "SELECT 1"))]
    assert migrate(procrastinate_url, migrations=load_migrations(fixed)).applied == [
        "999_broken.sql"
    ]


def test_an_index_build_interrupted_midway_is_rebuilt(procrastinate_url):
    """A CREATE INDEX CONCURRENTLY cut off while it waits leaves an invalid index; the next
    run drops it and builds it again instead of keeping it (IF NOT EXISTS alone would)."""
    index = TEST_INDEX
    migrate(procrastinate_url)  # what waits is the build alone
    migrations = load_migrations([*migration_files(), TEST_INDEX_MIGRATION])
    with psycopg.connect(procrastinate_url, autocommit=True) as blocker, \
            psycopg.connect(procrastinate_url, autocommit=True) as admin:
        # An old snapshot: the build's last phase waits for it to go.
        blocker.execute("begin isolation level repeatable read")
        blocker.execute("select count(*) from procrastinate_jobs")
        errors: list[Exception] = []

        def run() -> None:
            try:
                migrate(procrastinate_url, migrations=migrations)
            except MigrationError as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()

        def building() -> bool:
            row = admin.execute(
                "select pid from pg_stat_activity where datname = current_database()"
                " and query ilike %s and wait_event_type = 'Lock'",
                (f"%{index}%",),
            ).fetchone()
            return bool(row) and bool(admin.execute(
                "select pg_terminate_backend(%s)", (row[0],)
            ).fetchone())

        poll_until(building)
        thread.join(timeout=20)
        blocker.execute("commit")
    assert errors and f"(build index {index}) failed" in str(errors[0])
    with psycopg.connect(procrastinate_url) as conn:
        valid = conn.execute(
            "select indisvalid from pg_index where indexrelid = to_regclass(%s)", (index,)
        ).fetchone()
    assert valid == (False,)
    lines: list[str] = []
    migrate(procrastinate_url, notify=lines.append, migrations=migrations)
    assert any(f"index {index} was left invalid by an interrupted run; rebuilding" in line
               for line in lines)
    with psycopg.connect(procrastinate_url) as conn:
        assert conn.execute(
            "select indisvalid from pg_index where indexrelid = to_regclass(%s)", (index,)
        ).fetchone() == (True,)


def _migrate_before(url: str, first_pending: str) -> None:
    """Apply the migrations before `first_pending`: what is left starts with its lock steps
    (an index build earlier would wait for the blocker's transaction, by design)."""
    migrate(url, migrations=load_migrations(
        [(name, text) for name, text in migration_files() if name < first_pending]
    ))


def _hold_row_lock(url: str) -> psycopg.Connection:
    """A job transaction left open: holds ROW EXCLUSIVE on procrastinate_jobs."""
    conn = psycopg.connect(url, autocommit=True, application_name="long-job-transaction")
    conn.execute("begin")
    conn.execute("update procrastinate_jobs set priority = priority where id = (select min(id)"
                 " from procrastinate_jobs)")
    return conn


def test_a_step_waits_at_most_lock_timeout_lets_the_queue_through_and_retries(
    procrastinate_url,
):
    _migrate_before(procrastinate_url, "006")
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        Queue(conn).defer(10)
    blocker = _hold_row_lock(procrastinate_url)
    blocker_pid = blocker.info.backend_pid
    lines: list[str] = []
    errors: list[Exception] = []
    thread = threading.Thread(
        target=lambda: _collect(errors, migrate, procrastinate_url, notify=lines.append,
                                lock_timeout_ms=100)
    )
    thread.start()
    try:
        poll_until(lambda: any("retry" in line for line in lines))
        # Between attempts the migrate holds and waits for nothing: a defer goes through.
        with psycopg.connect(procrastinate_url, autocommit=True) as conn:
            started = time.monotonic()
            conn.execute("set statement_timeout = '5s'")
            Queue(conn).defer(1)
            assert time.monotonic() - started < 2
    finally:
        blocker.execute("commit")
        blocker.close()
        thread.join(timeout=60)
    assert errors == []
    retry = next(line for line in lines if "retry" in line)
    assert "lock not granted within 100 ms" in retry
    assert f"waiting for pid {blocker_pid} (long-job-transaction, idle in transaction" in retry
    assert "on procrastinate_jobs" in retry
    assert _recorded(procrastinate_url) == [name for name, _ in migration_files()]


def test_giving_up_on_a_lock_says_who_holds_it_and_the_next_run_completes(procrastinate_url):
    _migrate_before(procrastinate_url, "006")
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        Queue(conn).defer(10)
    blocker = _hold_row_lock(procrastinate_url)
    try:
        with pytest.raises(MigrationError, match=r"no lock after 2 tries, waiting for pid "
                           rf"{blocker.info.backend_pid} .*run the command again"):
            migrate(procrastinate_url, lock_timeout_ms=50, max_lock_attempts=2)
    finally:
        blocker.execute("commit")
        blocker.close()
    assert "006_light_hot_path.sql" not in _recorded(procrastinate_url)
    migrate(procrastinate_url)
    assert _recorded(procrastinate_url) == [name for name, _ in migration_files()]
    with psycopg.connect(procrastinate_url) as conn:
        assert ledger_mismatches(conn) == {}
        assert failed_list_mismatches(conn) == {}


def test_resumed_migration_ends_with_the_same_objects(procrastinate_url, database_url):
    def stop(step) -> None:
        if step.what.startswith("count moves into and out of failed"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate(procrastinate_url, between_steps=stop)
    migrate(procrastinate_url)
    assert jobdash_objects(procrastinate_url) == jobdash_objects(database_url)


def _collect(errors: list[Exception], fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - asserted by the test
        errors.append(exc)
