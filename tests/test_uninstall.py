"""`jobdash uninstall`: every jobdash_* object goes, Procrastinate's schema stays as created."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from jobdash.app.cli.main import main
from jobdash.core.errors import MigrationError
from jobdash.core.schema import migrate
from jobdash.core.schema.uninstall import uninstall
from tests.migrate_helpers import Queue, apply_procrastinate_schema, jobdash_objects, schema_dump


@pytest.fixture
def procrastinate_url(empty_database_url):
    apply_procrastinate_schema(empty_database_url)
    return empty_database_url


def _some_traffic(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        queue = Queue(conn)
        queue.defer(30)
        for _ in range(10):
            queue.churn()


def test_migrate_then_uninstall_leaves_procrastinate_schema_byte_identical(procrastinate_url):
    """Compared: `pg_dump --schema-only` of the same database before `migrate` and after
    `uninstall`. Normalised: only the `\\restrict`/`\\unrestrict` lines, whose key pg_dump
    draws at random on every run (15.14 and later)."""
    _some_traffic(procrastinate_url)
    before = schema_dump(procrastinate_url)
    migrate(procrastinate_url)
    _some_traffic(procrastinate_url)  # our triggers fire, our tables fill
    assert schema_dump(procrastinate_url) != before
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        queue = Queue(conn)
        queue.defer(1)
        job = queue.fetch()
        assert job is not None
        queue.finish(job, "failed")
        listed = "select count(*) from jobdash_failed_jobs where job_id = %s"
        assert conn.execute(listed, (job,)).fetchone()[0] == 1
    removed = uninstall(procrastinate_url)
    assert len(removed) > 30
    assert "table jobdash_failed_jobs" in {f"{r.kind} {r.name}" for r in removed}
    assert schema_dump(procrastinate_url) == before
    assert jobdash_objects(procrastinate_url) == []
    with psycopg.connect(procrastinate_url) as conn:
        assert conn.execute("select count(*) from procrastinate_jobs").fetchone()[0] > 30


def test_objects_are_found_by_name_whatever_their_kind(procrastinate_url):
    before = schema_dump(procrastinate_url)
    migrate(procrastinate_url)
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        conn.execute(
            """
            create type jobdash_x_kind as enum ('a', 'b');
            create type jobdash_x_pair as (a int, b int);
            create domain jobdash_x_positive as int check (value > 0);
            create sequence jobdash_x_seq;
            create view jobdash_x_view as select count(*) from jobdash_job_errors;
            create view jobdash_x_view_of_view as select * from jobdash_x_view;
            create materialized view jobdash_x_matview as select 1 as one;
            create procedure jobdash_x_proc(n jobdash_x_positive) language sql as 'select 1';
            create aggregate jobdash_x_sum(int) (sfunc = int4pl, stype = int);
            create index jobdash_x_idx on procrastinate_events (at);
            alter table procrastinate_jobs add column jobdash_x_note text;
            alter table procrastinate_jobs add constraint jobdash_x_check
                check (attempts >= 0) not valid;
            """
        )
    uninstall(procrastinate_url)
    assert schema_dump(procrastinate_url) == before


def test_uninstall_on_a_database_without_jobdash_says_nothing_to_remove(procrastinate_url, capsys):
    assert main(["uninstall", "--yes", "--database-url", procrastinate_url]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_uninstall_refuses_without_yes_when_stdin_is_not_a_terminal(database_url):
    result = subprocess.run(
        [sys.executable, "-m", "jobdash", "uninstall", "--database-url", database_url],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "stdin is not a terminal: pass --yes" in result.stderr
    assert jobdash_objects(database_url) != []


def test_uninstall_asks_on_a_terminal(database_url, monkeypatch, capsys):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert main(["uninstall", "--database-url", database_url]) == 1
    out = capsys.readouterr().out
    assert "This removes from" in out and " tables, " in out and " triggers, " in out
    assert " indexes" not in out  # none of ours on Procrastinate's tables (008 dropped them)
    assert "nothing removed" in out
    assert jobdash_objects(database_url) != []
    assert main(["uninstall", "--database-url", database_url]) == 0
    assert "Procrastinate's schema is as it was" in capsys.readouterr().out
    assert jobdash_objects(database_url) == []


def test_an_object_of_the_team_on_ours_stops_uninstall_and_is_kept(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("create view team_errors as select * from jobdash_job_errors")
    with pytest.raises(MigrationError, match="team_errors depends on table jobdash_job_errors"):
        uninstall(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("drop view team_errors")
    uninstall(database_url)
    assert jobdash_objects(database_url) == []


def test_uninstall_does_not_queue_behind_a_long_job_transaction(database_url):
    blocker = psycopg.connect(database_url, autocommit=True)
    blocker.execute("begin")
    blocker.execute("select procrastinate_defer_jobs_v1(array[row('q', 't', 0, null, null,"
                    " '{}'::jsonb, null)::procrastinate_job_to_defer_v1])")
    try:
        with pytest.raises(MigrationError, match=r"drop trigger .* no lock after 2 tries, "
                           rf"waiting for pid {blocker.info.backend_pid}"):
            uninstall(database_url, lock_timeout_ms=50, max_lock_attempts=2)
    finally:
        blocker.execute("commit")
        blocker.close()
    uninstall(database_url)  # completes what the first one started
    assert jobdash_objects(database_url) == []
