"""The dashboard's CSV buttons and "Retry stalled" (AppTest + real PostgreSQL)."""

from __future__ import annotations

import csv
import io

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from jobdash.app.cache import data
from jobdash.app.read.failed_jobs import (
    EXPORT_FAILED_HEADER,
    FailedJobFilter,
    export_failed_jobs_rows,
)
from jobdash.app.read.models import QueueRow
from jobdash.app.rules.csv_format import CsvSource, csv_bytes, iter_csv
from jobdash.app.ui.widgets.downloads import records_source
from tests.actions_helpers import job_status, make_failed_jobs
from tests.dashboard_app import run_app
from tests.dashboard_data import add_job, add_periodic, add_worker

CSV_KEYS = {
    "csv-queue-statistics",
    "csv-workers",
    "csv-stalled-jobs",
    "csv-upcoming-scheduled-tasks",
}








def button_keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button}


def parse_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def test_every_dashboard_table_has_a_csv_button(dashboard: str, conn: psycopg.Connection) -> None:
    add_job(conn, queue="emails")
    add_job(conn, final_status="doing")  # no worker: stalled
    add_job(conn, final_status="failed")
    add_worker(conn, "web-1", 1)
    add_periodic(conn, "tasks.cleanup", "0 * * * *")

    at = run_app()

    assert not at.exception
    assert {b.key for b in at.download_button} == CSV_KEYS
    assert all(b.label == "Download CSV" for b in at.download_button)
    # Every failed job is streamed by the export route; the panel links to it.
    (link,) = [e for e in at.get("link_button") if e.proto.label == "Download CSV"]
    assert link.proto.url == "export/failed-jobs.csv"


def failed_jobs_csv_chunks(database_url: str) -> list[bytes]:
    """What the export route streams for an empty filter (app/export_routes.py)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = export_failed_jobs_rows(conn, FailedJobFilter())
        return list(iter_csv(CsvSource(EXPORT_FAILED_HEADER, rows), chunk_rows=7))


def test_failed_jobs_csv_has_every_failed_job_not_only_the_50_listed(
    database_url: str, conn: psycopg.Connection
) -> None:
    ids = make_failed_jobs(conn, 60, note='=HYPERLINK("http://evil")', message="-1+1")

    rows = parse_csv(b"".join(failed_jobs_csv_chunks(database_url)))

    assert rows[0][:3] == ["id", "queue", "task"]
    assert sorted(int(r[0]) for r in rows[1:]) == sorted(ids)
    header = rows[0]
    assert {r[header.index("error_message")] for r in rows[1:]} == {"'-1+1"}
    assert all(r[header.index("args")].startswith("{") for r in rows[1:])
    assert all("=HYPERLINK" in r[header.index("args")] for r in rows[1:])


def test_record_csv_keeps_the_rows_shown_and_neutralises_cells() -> None:
    queues = [QueueRow("=cmd|' /C calc'!A0", 1, 2, 3, 4, 5.5)]
    source = records_source(QueueRow, queues)
    queues.clear()  # a later tick replacing the data does not change what was shown

    rows = parse_csv(csv_bytes(source))

    assert rows == [
        ["name", "ready", "scheduled", "doing", "failed", "oldest_ready_age_s", "capped",
         "ready_estimate", "scheduled_estimate", "doing_estimate", "estimated_at"],
        ["'=cmd|' /C calc'!A0", "1", "2", "3", "4", "5.5", "false", "", "", "", ""],
    ]
    assert parse_csv(csv_bytes(records_source(QueueRow, []))) == [rows[0]]


def test_retry_stalled_acts_on_the_ids_captured_when_the_dialog_opened(
    dashboard: str, conn: psycopg.Connection
) -> None:
    first = add_job(conn, final_status="doing")
    second = add_job(conn, final_status="doing")
    at = run_app()
    assert not at.exception
    assert at.button(key="retry_stalled").label == "Retry stalled (2)"

    at.button(key="retry_stalled").click().run()
    shown = " ".join(t.value for t in at.text)
    assert f"Retry exactly 2 stalled jobs: {first}, {second}." in shown

    later = add_job(conn, final_status="doing")  # appears after the dialog opened
    data.invalidate()
    at.run()  # a tick: the dialog still names the same jobs
    assert f"Retry exactly 2 stalled jobs: {first}, {second}." in " ".join(t.value for t in at.text)

    at.button(key="confirm_retry_stalled").click().run()

    assert not at.exception
    assert job_status(conn, first) == "todo" and job_status(conn, second) == "todo"
    assert job_status(conn, later) == "doing"
    assert [t.value for t in at.toast] == ["Retried stalled 2 jobs"]
    assert conn.execute(
        "SELECT actor, action, done, skipped, job_ids FROM jobdash_audit_log"
    ).fetchall() == [("dashboard", "retry_stalled", 2, 0, [first, second])]
    # The panel was refreshed at once: only the job that appeared later is still listed.
    assert at.button(key="retry_stalled").label == "Retry stalled (1)"
    assert "confirm_retry_stalled" not in button_keys(at)


def test_retry_stalled_reports_a_job_that_moved_on_meanwhile(
    dashboard: str, conn: psycopg.Connection
) -> None:
    moved = add_job(conn, final_status="doing")
    stalled = add_job(conn, final_status="doing")
    at = run_app()
    at.button(key="retry_stalled").click().run()
    conn.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (moved,))

    at.button(key="confirm_retry_stalled").click().run()

    assert job_status(conn, stalled) == "todo" and job_status(conn, moved) == "succeeded"
    # The toast escapes markdown; unescaped, it is the action's summary.
    assert [t.value.replace("\\", "") for t in at.toast] == [
        "Retried stalled 1 job; skipped 1 (no longer doing (now succeeded): 1)"
    ]


def test_cancel_closes_the_dialog_without_acting(dashboard: str, conn: psycopg.Connection) -> None:
    job = add_job(conn, final_status="doing")
    at = run_app()
    at.button(key="retry_stalled").click().run()
    at.button(key="cancel_retry_stalled").click().run()
    assert job_status(conn, job) == "doing"
    assert "confirm_retry_stalled" not in button_keys(at)
    assert conn.execute("SELECT count(*) FROM jobdash_audit_log").fetchone()[0] == 0


def test_read_only_hides_retry_stalled(
    dashboard: str, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_job(conn, final_status="doing")
    monkeypatch.setenv("JOBDASH_READ_ONLY", "1")
    at = run_app()
    assert not at.exception
    assert "Stalled jobs (1):" in [t.value for t in at.text]
    assert "retry_stalled" not in button_keys(at)
    assert "csv-stalled-jobs" in {b.key for b in at.download_button}  # reading stays allowed
