"""`jobdash seed`: proportions, history spread, errors, workers and periodic tasks."""

from __future__ import annotations

import psycopg
import pytest

from jobdash.app.cli.main import main
from jobdash.app.read.dashboard import load_snapshot
from jobdash.jobs.demo.seed import seed


def test_seed_shape(database_url: str, conn: psycopg.Connection) -> None:
    report = seed(database_url, 20_000, days=7, last_hour_per_min=100)
    assert report.jobs == 20_000
    counts = dict(
        conn.execute("select status::text, count(*) from procrastinate_jobs group by 1").fetchall()
    )
    assert sum(counts.values()) == 20_000
    assert 0.93 < counts["succeeded"] / 20_000 < 0.95
    assert 0.04 < counts["failed"] / 20_000 < 0.06
    assert {"todo", "doing", "cancelled"} <= set(counts)
    row = conn.execute(
        "select min(at) < now() - interval '6 days', "
        "count(*) filter (where at > now() - interval '1 hour') "
        "from procrastinate_events where type = 'deferred'"
    ).fetchone()
    assert row is not None
    assert row[0] and 5_900 <= row[1] <= 6_000  # 100 per minute in the last hour
    # Every failed job has one error row per attempt; failed_at comes from the finish table.
    row = conn.execute(
        "select count(*) filter (where e.n is distinct from j.attempts) from procrastinate_jobs j "
        "left join (select job_id, count(*) n from jobdash_job_errors group by 1) e "
        "on e.job_id = j.id where j.status = 'failed'"
    ).fetchone()
    assert row == (0,)
    snap = load_snapshot(conn)
    assert snap.failed_jobs.total_failed_jobs == counts["failed"]
    assert all(job.error for job in snap.failed_jobs.jobs)
    assert snap.worker_health.total_workers == 4 and snap.worker_health.active_workers == 2
    assert snap.scheduler.due_tasks >= 1
    assert snap.queue_stats.total_jobs > 5_000 and snap.queue_stats.avg_execution_time_ms


def test_seed_triggers_are_back_on(database_url: str, conn: psycopg.Connection) -> None:
    seed(database_url, 100)
    row = conn.execute(
        "select count(*) from pg_trigger where tgrelid in "
        "('procrastinate_jobs'::regclass, 'procrastinate_events'::regclass) "
        "and not tgisinternal and tgenabled = 'D'"
    ).fetchone()
    assert row == (0,)


def test_command_rejects_bad_input(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed", "--jobs", "0", "--database-url", database_url]) == 2
    assert "--jobs must be" in capsys.readouterr().err
    assert main(["seed", "--jobs", "50", "--database-url", database_url]) == 0
    assert "seeded 50 jobs" in capsys.readouterr().out
