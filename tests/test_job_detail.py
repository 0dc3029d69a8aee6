"""Job detail as the operator reads it: attempts numbered by runs, library frames folded."""

from __future__ import annotations

import pytest
from psycopg.types.json import Jsonb

from jobdash.app.actions.jobs import delete_jobs
from jobdash.app.read.job_detail import load_job_detail
from jobdash.app.rules.tracebacks import frame_library, split_traceback
from jobdash.core.errors import ArchiveError
from tests.actions_helpers import as_operator, make_failed_jobs


def _fail_again(conn, job_id: int, recorded_attempt: int) -> None:
    """Run the job once more and fail it, the way a manual retry then a failure leave it."""
    for status in ("todo", "doing"):
        with conn.transaction():  # separate transactions: the events get later times
            conn.execute(
                "UPDATE procrastinate_jobs SET status = %s, attempts = %s WHERE id = %s",
                (status, recorded_attempt - 1, job_id),
            )
    with conn.transaction():
        conn.execute(
            "UPDATE procrastinate_jobs SET status = 'failed', attempts = %s WHERE id = %s",
            (recorded_attempt, job_id),
        )
        conn.execute(
            "INSERT INTO jobdash_job_errors (job_id, attempt, exception_type, message,"
            " traceback, will_retry) VALUES (%s, %s, 'ValueError', 'again', 'tb', false)",
            (job_id, recorded_attempt),
        )


def test_attempts_are_numbered_by_the_runs_the_operator_saw(conn) -> None:
    [job_id] = make_failed_jobs(conn, 1)
    # Procrastinate counts the manual retry as an attempt too: the next error is recorded as 3.
    _fail_again(conn, job_id, recorded_attempt=3)
    detail = load_job_detail(conn, job_id)
    assert detail is not None
    assert [e["attempt"] for e in detail.errors] == [1, 3]
    assert [e["number"] for e in detail.errors] == [1, 2]


def test_a_deleted_job_reads_from_its_archive_as_it_read_live(conn) -> None:
    [job_id] = make_failed_jobs(conn, 1, queueing_lock="lk")
    _fail_again(conn, job_id, recorded_attempt=3)
    conn.execute("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = %s", (job_id,))
    live = load_job_detail(conn, job_id)
    assert live is not None and live.job["scheduled_at"] is not None
    delete_jobs(conn, [job_id], as_operator("a"))
    archived = load_job_detail(conn, job_id)
    assert archived is not None and archived.deleted_by == "a"
    assert archived.job == live.job
    assert archived.events == live.events
    assert archived.errors == live.errors


def test_a_damaged_archive_is_named_not_shown(conn) -> None:
    [job_id] = make_failed_jobs(conn, 1)
    delete_jobs(conn, [job_id], as_operator("a"))
    conn.execute(
        "UPDATE jobdash_deleted_jobs SET job = job || %s WHERE job_id = %s",
        (Jsonb({"attempts": "many"}), job_id),
    )
    with pytest.raises(ArchiveError, match="attempts"):
        load_job_detail(conn, job_id)


TRACEBACK = """Traceback (most recent call last):
  File "/usr/local/lib/python3.11/site-packages/procrastinate/worker.py", line 300, in run
    await self.run_job(job)
  File "/srv/venv/lib/python3.11/site-packages/jobdash/jobs/instrumentation/middleware.py", line 9
    return await call_next()
  File "/usr/lib/python3.11/asyncio/tasks.py", line 10, in wait_for
    return fut.result()
  File "/srv/shop/billing/tasks.py", line 42, in charge_card
    raise PaymentDeclined("card ending 0002 declined")
billing.tasks.PaymentDeclined: card ending 0002 declined"""


def test_library_frames_are_folded_and_the_teams_frames_stay() -> None:
    segments = split_traceback(TRACEBACK)
    assert [s.folded for s in segments] == [False, True, False]
    assert segments[1].libraries == ("procrastinate", "jobdash", "stdlib")
    assert segments[1].frames == 3
    assert "billing/tasks.py" in segments[2].text and "PaymentDeclined" in segments[2].text
    assert "\n".join(s.text for s in segments) == TRACEBACK  # nothing lost


def test_frames_are_classified_by_path() -> None:
    assert frame_library("/x/lib/python3.12/site-packages/asgiref/sync.py") == "asgiref"
    assert frame_library("/x/lib/python3.11/dist-packages/psycopg/cursor.py") == "psycopg"
    assert frame_library("<frozen importlib._bootstrap>") == "stdlib"
    assert frame_library("/work/main/jobdash/jobs/instrumentation/middleware.py") == "jobdash"
    assert frame_library("/home/me/project/jobs/tasks.py") is None  # a team's own `jobs/`
    windows = "C:\\Python311\\Lib\\site-packages\\procrastinate\\x.py"
    assert frame_library(windows) == "procrastinate"


def test_a_traceback_without_frames_is_one_segment() -> None:
    assert [s.text for s in split_traceback("no traceback recorded")] == ["no traceback recorded"]
