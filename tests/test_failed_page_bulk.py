"""\"Retry all N matching\" on the Failed jobs page: batches on its own thread, progress, Stop.

AppTest against a real database. To stop midway deterministically the test holds a row lock
on a job of the second batch, so the run waits there; Stop is then clicked and the lock
released: the second batch completes and the run stops before the third.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from jobdash.app.ui.navigation import page_file
from tests.actions_helpers import make_failed_jobs

PAGE = str(page_file("failed_jobs"))
BULK = "jobdash_bulk_run"
JOBS = 3000
WAIT_S = 60


@pytest.fixture
def page_env(database_url, monkeypatch):
    monkeypatch.setenv("JOBDASH_DATABASE_URL", database_url)
    monkeypatch.delenv("JOBDASH_READ_ONLY", raising=False)
    return database_url


def start_retry_all(at: AppTest) -> None:
    at.button(key="retry_all").click().run()
    assert "Retry all 3,000 failed jobs matching: no filter" in [t.value for t in at.text]
    at.button(key="confirm_all").click().run()
    assert not at.exception


def bulk_run(at: AppTest):
    return at.session_state[BULK]


def statuses(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1"
    ).fetchall()
    return dict(rows)


def audit_rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT actor, action, done, skipped, details->>'batch', details->>'run'"
        " FROM jobdash_audit_log ORDER BY id"
    ).fetchall()


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling a condition, not synchronising on time


def test_retry_all_matching_runs_in_batches_and_reports(page_env, conn):
    make_failed_jobs(conn, JOBS)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert at.button(key="retry_all").label == "Retry all 3,000 matching"

    start_retry_all(at)
    run = bulk_run(at)
    run.thread.join(WAIT_S)
    assert not run.thread.is_alive()
    at.run()  # the progress fragment sees the end, keeps the message and reruns the page

    assert not at.exception
    assert [t.value for t in at.toast] == ["Retried 3,000 jobs"]
    assert BULK not in at.session_state
    assert statuses(conn) == {"todo": JOBS}
    rows = audit_rows(conn)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("dashboard", "retry", 1000, 0, "1"),
        ("dashboard", "retry", 1000, 0, "2"),
        ("dashboard", "retry", 1000, 0, "3"),
    ]
    assert len({r[5] for r in rows}) == 1  # one run id for the three batches
    assert any("0 failed jobs match" in t.value for t in at.text)


def test_stop_midway_keeps_what_was_done(page_env, conn, database_url):
    ids = make_failed_jobs(conn, JOBS)
    at = AppTest.from_file(PAGE, default_timeout=60).run()

    with psycopg.connect(database_url) as blocker:
        # A row of the second batch (ids are walked in order, 1,000 at a time) stays locked.
        blocker.execute("SELECT 1 FROM procrastinate_jobs WHERE id = %s FOR UPDATE", (ids[1500],))
        start_retry_all(at)
        wait_until(
            lambda: (
                conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchone()[0]
                == 1
            ),
            "the run to wait on the locked job",
        )
        at.run()  # the page stays usable while the run waits; it shows the progress
        assert not at.exception
        assert [p.proto.text for p in at.get("progress")] == ["retry: 1,000 of 3,000 processed"]
        at.button(key="bulk_stop").click().run()
        assert bulk_run(at).stop.is_set()
        at.run()
        assert [p.proto.text for p in at.get("progress")] == [
            "retry: 1,000 of 3,000 processed — stopping after the current batch"
        ]
        assert at.button(key="bulk_stop").disabled
        blocker.rollback()  # let the second batch finish

    run = bulk_run(at)
    run.thread.join(WAIT_S)
    assert not run.thread.is_alive()
    at.run()

    assert not at.exception
    assert [t.value.replace("\\", "") for t in at.toast] == [
        "Stopped midway. Retried 2,000 jobs; 1,000 of 3,000 matching not processed"
    ]
    assert statuses(conn) == {"todo": 2000, "failed": 1000}
    assert [r[2] for r in audit_rows(conn)] == [1000, 1000]
    assert any("1,000 failed jobs match" in t.value for t in at.text)
