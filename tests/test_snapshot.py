"""`jobdash snapshot`: the JSON contract and the readable text, from the same loaders."""

from __future__ import annotations

import json

import psycopg
import pytest

from jobdash.app.cli.main import main
from tests.loader_helpers import add_worker, defer, finish_in_past, record_error


def test_json_has_the_contract_keys(
    conn: psycopg.Connection, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    job = defer(conn, queue="mail", task="<script>x</script>", args={"a": 1})
    finish_in_past(conn, job, "failed", started_ago_s=20, finished_ago_s=10)
    record_error(conn, job, 1, "ValueError", "**bold**")
    add_worker(conn, heartbeat_ago_s=3)
    assert main(["snapshot", "--json", "--database-url", database_url]) == 0
    data = json.loads(capsys.readouterr().out)
    keys = ["generated_at", "queue_stats", "worker_health", "failed_jobs", "scheduler"]
    assert list(data) == keys
    assert data["generated_at"].endswith("+00:00")
    qs = data["queue_stats"]
    assert set(qs) >= {
        "current_queue_size", "window_seconds", "successful_jobs", "failed_jobs", "total_jobs",
        "success_rate", "avg_execution_time_ms", "queues",
    }  # fmt: skip
    assert qs["failed_jobs"] == 1 and qs["success_rate"] == 0
    assert set(qs["queues"][0]) == {
        "name", "ready", "scheduled", "doing", "failed", "oldest_ready_age_s", "capped",
        "ready_estimate", "scheduled_estimate", "doing_estimate", "estimated_at",
    }  # fmt: skip
    wh = data["worker_health"]
    assert {"total_workers", "active_workers", "jobs_in_progress", "stalled_jobs"} <= set(wh)
    assert set(wh["workers"][0]) >= {
        "worker_id", "hostname", "pid", "healthy", "jobs", "max_jobs", "cpu_percent",
        "memory_mb", "last_heartbeat", "heartbeat_age_s",
    }  # fmt: skip
    failed = data["failed_jobs"]["jobs"][0]
    assert failed["task"] == "<script>x</script>" and failed["error"] == "ValueError: **bold**"
    assert set(failed) == {
        "id", "queue", "task", "error", "payload_preview", "failed_at", "attempts",
    }  # fmt: skip
    assert {"total_scheduled_tasks", "due_tasks", "next_execution", "upcoming"} <= set(
        data["scheduler"]
    )


def test_text_form_and_window(
    conn: psycopg.Connection, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    defer(conn, queue="mail")
    assert main(["snapshot", "--database-url", database_url, "--window", "60"]) == 0
    out = capsys.readouterr().out
    assert "Queue statistics (last 60 s)" in out and "'mail': ready 1" in out


def test_bad_input_is_one_line(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshot", "--database-url", database_url, "--window", "0"]) == 2
    assert main(["snapshot", "--database-url", database_url, "--app", "no.such:app"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("jobdash snapshot: error:") for line in err)
