"""`jobdash migrate --plan` and `--check`, and the rules every migration file is held to."""

from __future__ import annotations

import re

import psycopg
import pytest

from jobdash.app.cli.main import build_parser, main
from jobdash.core.errors import MigrationError
from jobdash.core.schema import load_migrations, migrate, migration_files, runner
from jobdash.core.schema.sqltext import statements
from tests.migrate_helpers import (
    TEST_INDEX,
    TEST_INDEX_MIGRATION,
    Queue,
    apply_procrastinate_schema,
    schema_dump,
)


@pytest.fixture
def procrastinate_url(empty_database_url):
    apply_procrastinate_schema(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        Queue(conn).defer(2000)
        conn.execute("analyze")
    return empty_database_url


def test_check_exits_1_listing_what_is_pending_and_0_when_up_to_date(
    procrastinate_url, database_url, capsys
):
    assert main(["migrate", "--check", "--database-url", procrastinate_url]) == 1
    names = ", ".join(name for name, _ in migration_files())
    assert capsys.readouterr().out.strip() == f"pending: {names}"
    assert main(["migrate", "--check", "--database-url", database_url]) == 0
    assert capsys.readouterr().out.strip() == "database is up to date"


def test_plan_prints_each_step_its_table_lock_and_estimate_and_changes_nothing(
    procrastinate_url, capsys
):
    before = schema_dump(procrastinate_url)
    assert main(["migrate", "--plan", "--database-url", procrastinate_url]) == 0
    out = capsys.readouterr().out
    assert schema_dump(procrastinate_url) == before
    steps = sum(len(m.steps) for m in load_migrations())
    assert len(re.findall(r"^  \S", out, re.MULTILINE)) == steps  # one entry per step
    blocks = _blocks(out)
    assert blocks["keep the events of a job deleted while open"][0].startswith(
        "procrastinate_jobs: SHARE ROW EXCLUSIVE lock (blocks writers while held"
    )
    # No step of ours builds an index on Procrastinate's tables (each one slowed defers).
    assert not [what for what in blocks if what.startswith("build index")]
    listing = blocks["list the failed jobs there are (backfill)"]
    assert listing[0].startswith("procrastinate_jobs, procrastinate_events: ACCESS SHARE lock")
    assert "(procrastinate_jobs + procrastinate_events: ~" in listing[1] and " MB)" in listing[1]
    assert blocks["create jobdash_job_errors"] == [
        "our tables only (no lock on Procrastinate's); < 0.1 s"
    ]
    backfill = blocks["count the failed jobs there are (ledger backfill)"]
    assert "procrastinate_jobs: ACCESS SHARE lock" in backfill[0]


def test_plan_of_an_interrupted_run_says_what_the_resume_replaces(
    procrastinate_url, capsys, monkeypatch
):
    with_index = load_migrations([*migration_files(), TEST_INDEX_MIGRATION])

    def stop(step) -> None:
        if step.what == f"build index {TEST_INDEX}":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate(procrastinate_url, between_steps=stop, migrations=with_index)
    monkeypatch.setattr(runner, "load_migrations", lambda: with_index)
    main(["migrate", "--plan", "--database-url", procrastinate_url])
    blocks = _blocks(capsys.readouterr().out)
    assert "009_alerts.sql" not in blocks and TEST_INDEX_MIGRATION[0] in blocks
    assert blocks[f"build index {TEST_INDEX}"][-1] == "note: already built: skipped"
    with psycopg.connect(procrastinate_url, autocommit=True) as conn:
        conn.execute("update pg_index set indisvalid = false"
                     f" where indexrelid = '{TEST_INDEX}'::regclass")
    main(["migrate", "--plan", "--database-url", procrastinate_url])
    blocks = _blocks(capsys.readouterr().out)
    assert blocks[f"build index {TEST_INDEX}"][-1] == (
        "note: left invalid by an interrupted run: dropped concurrently and built again"
    )


def test_plan_of_an_up_to_date_database(database_url, capsys):
    assert main(["migrate", "--plan", "--database-url", database_url]) == 0
    assert capsys.readouterr().out.strip() == "database is up to date: nothing to do"


def test_help_documents_plan_check_and_the_lock_timeout():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    text = action.choices["migrate"].format_help()
    for words in ("--plan", "--check", "exits 1", "JOBDASH_MIGRATE_LOCK_TIMEOUT_MS",
                  "pg_relation_size", "reltuples", "CONCURRENTLY"):
        assert words in text


def _blocks(out: str) -> dict[str, list[str]]:
    """{'create trigger x': [its detail lines]}, keyed without the step's number (file
    names map to [])."""
    blocks: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        if line.startswith("      "):
            current.append(line.strip())
        elif line.startswith("  ") or not line.startswith(" "):
            current = blocks.setdefault(re.sub(r"^\d+/\d+ ", "", line.strip()), [])
    return blocks


# The rules a migration file is held to when it is read.

def _load(text: str):
    return load_migrations([("100_x.sql", text)])


@pytest.mark.parametrize(("text", "message"), [
    ("CREATE TABLE jobdash_x (a int);", "no '-- step: <what it does>' line"),
    ("CREATE TABLE jobdash_x (a int);\n-- step: x\nSELECT 1;", "SQL before the first"),
    ("-- step:\nSELECT 1;", "say what the step does"),
    ("-- step: x\n-- only a comment\n", "no SQL"),
    ("-- step (sometimes): x\nSELECT 1;", "unknown option 'sometimes'"),
    ("-- step: x\nCREATE INDEX IF NOT EXISTS jobdash_i ON procrastinate_jobs (status);",
     "jobdash_i on procrastinate_jobs must be built CONCURRENTLY"),
    ("-- step: x\nCREATE INDEX CONCURRENTLY jobdash_i ON procrastinate_jobs (status);\n"
     "SELECT 1;", "CONCURRENTLY statement must be the step's only one"),
    ("-- step (batched): x\nSELECT jobdash_f(1);", "batched step is one statement using"),
    ("-- step: x\nDROP TRIGGER IF EXISTS jobdash_t ON procrastinate_events;\n"
     "CREATE TRIGGER jobdash_t AFTER INSERT ON procrastinate_jobs"
     " FOR EACH ROW EXECUTE FUNCTION jobdash_f();",
     "locks procrastinate_events and also touches procrastinate_jobs"),
])
def test_steps_that_could_block_or_deadlock_a_live_queue_are_refused(text, message):
    with pytest.raises(MigrationError, match=message):
        _load(text)


def test_a_call_counts_as_what_the_called_function_touches():
    # The function body locks procrastinate_jobs; calling it beside a trigger on events is
    # two of Procrastinate's tables in one step.
    text = (
        "-- step: f\nCREATE OR REPLACE FUNCTION jobdash_f() RETURNS void LANGUAGE sql AS $$"
        " UPDATE procrastinate_jobs SET priority = 0 $$;\n"
        "-- step: both\nCREATE TRIGGER jobdash_t AFTER INSERT ON procrastinate_events"
        " FOR EACH ROW EXECUTE FUNCTION jobdash_g();\nSELECT jobdash_f();"
    )
    with pytest.raises(MigrationError, match="locks procrastinate_events and also touches "
                       "procrastinate_jobs"):
        _load(text)


def test_shipped_migrations_keep_the_rules():
    for migration in load_migrations():
        for step in migration.steps:
            theirs = {e.table for e in step.effects if e.table and e.table.startswith(
                "procrastinate_")}
            if step.locked_tables():
                assert len(theirs) == 1, step.label
            if step.concurrent:
                assert len(step.statements) == 1, step.label


def test_statements_split_on_top_level_semicolons_only():
    text = """
    CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END; $body$;
    -- a comment; with a semicolon
    SELECT 'a;b', "odd;name" FROM t /* c; /* nested; */ */;
    SELECT E'it\\'s; fine';
    """
    found = statements(text)
    assert len(found) == 3
    assert found[0].bodies == (" BEGIN RETURN 1; END; ",)
    assert found[1].skeleton == "SELECT '', \"odd;name\" FROM t"
    assert found[2].skeleton == "SELECT E''"
