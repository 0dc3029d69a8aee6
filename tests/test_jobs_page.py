"""The Jobs, Queues and Locks pages and the scheduler's controls, with AppTest on a real
database."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from jobdash.app.actions import controls
from jobdash.app.cache import data
from jobdash.app.ui.navigation import JOB_DETAIL_PAGE, page_file
from tests.actions_helpers import as_operator, job_status
from tests.dashboard_data import add_job, add_periodic, add_worker
from tests.hostile import HOSTILE


@pytest.fixture
def page_env(database_url, monkeypatch):
    monkeypatch.setenv("JOBDASH_DATABASE_URL", database_url)
    monkeypatch.delenv("JOBDASH_READ_ONLY", raising=False)
    data.invalidate()
    yield database_url
    data.invalidate()


def run_page(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(page_file(page)), default_timeout=30)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def texts(at: AppTest) -> str:
    return " ".join(t.value for t in at.text)


def test_job_links_open_the_jobs_page():
    assert JOB_DETAIL_PAGE == "jobs" and page_file(JOB_DETAIL_PAGE).name == "jobs.py"


def test_jobs_filtered_by_url_then_cancel_selected_through_the_confirmation(page_env, conn):
    a, b = add_job(conn, queue="emails"), add_job(conn, queue="emails")
    add_job(conn, queue="reports", final_status="succeeded")
    at = run_page("jobs", {"state": "ready", "queue": "emails"})
    assert not at.exception
    assert "2 jobs match the filter" in texts(at)
    assert button(at, "state_ready").label == "Ready · 2"
    at.session_state["jobs_editor_1"] = {
        "edited_rows": {0: {"select": True}}, "added_rows": [], "deleted_rows": [],
    }  # fmt: skip
    at.run()
    button(at, "cancel_selected").click().run()
    assert f"Cancel exactly 1 job: {b}" in texts(at)
    assert job_status(conn, b) == "todo"  # nothing before confirming
    button(at, "confirm_ids").click().run()
    assert job_status(conn, b) == "cancelled" and job_status(conn, a) == "todo"
    assert conn.execute("SELECT action, done FROM jobdash_audit_log").fetchall() == [("cancel", 1)]


def test_state_button_filters_and_bad_filter_is_a_notice(page_env, conn):
    add_job(conn, final_status="failed")
    at = run_page("jobs")
    button(at, "state_failed").click().run()
    assert at.query_params["state"] == ["failed"] or at.query_params["state"] == "failed"
    at = run_page("jobs", {"args": "password=1"})
    assert not at.exception
    assert any("redacted key" in w.value for w in at.warning)


def test_detail_of_a_waiting_job_says_why_and_offers_its_actions(page_env, conn):
    add_worker(conn, "web-1", 4101)
    job = add_job(conn, queue="emails", args={"note": HOSTILE["html_and_script"][0]})
    controls.pause_queue(conn, "emails", as_operator("alice"))
    at = run_page("jobs", {"job": str(job)})
    assert not at.exception
    assert any("is paused" in i.value for i in at.info)
    assert any(HOSTILE["html_and_script"][0] in c.value for c in at.code)  # args as text
    assert {"detail_cancel", "detail_reschedule"} <= {b.key for b in at.button}
    button(at, "detail_cancel").click().run()
    button(at, "confirm_ids").click().run()
    assert job_status(conn, job) == "cancelled"


def test_detail_of_running_and_failed_jobs(page_env, conn):
    running = add_job(conn, final_status="doing")
    at = run_page("jobs", {"job": str(running)})
    assert any("should_abort()" in c.value for c in at.caption)
    button(at, "detail_abort").click().run()
    button(at, "confirm_ids").click().run()
    at = run_page("jobs", {"job": str(running)})
    assert any(m.value == "Abort requested" for m in at.metric)
    failed = add_job(conn, final_status="failed")
    at = run_page("jobs", {"job": str(failed)})
    button(at, "detail_retry").click().run()
    assert job_status(conn, failed) == "todo"


def test_read_only_hides_the_actions(page_env, conn, monkeypatch):
    job = add_job(conn)
    monkeypatch.setenv("JOBDASH_READ_ONLY", "1")
    at = run_page("jobs")
    assert not {"cancel_selected", "cancel_all"} & {b.key for b in at.button}
    at = run_page("jobs", {"job": str(job)})
    assert "detail_cancel" not in {b.key for b in at.button}
    at = run_page("queues")
    assert "pause_queue" not in {b.key for b in at.button}


def test_queues_page_pause_resume_and_who_honours(page_env, conn):
    add_worker(conn, "web-1", 4101)  # instrumented but publishes no capability: cannot honour
    add_job(conn, queue="emails")
    at = run_page("queues")
    assert not at.exception
    frame = at.dataframe[0].value
    assert list(frame["queue"]) == ["emails"]
    assert frame["listening"][0] == "web-1:4101 (w)" and frame["honour_pauses"][0] == "—"
    button(at, "pause_queue").click().run()
    assert conn.execute("SELECT paused_by FROM jobdash_queue_pauses").fetchall() == [
        ("dashboard",)
    ]
    assert any("do not honour pauses" in w.value for w in at.warning)
    button(at, "resume_queue").click().run()
    assert conn.execute("SELECT count(*) FROM jobdash_queue_pauses").fetchone()[0] == 0


def test_locks_page(page_env, conn):
    holder, waiting = add_job(conn, final_status="doing"), add_job(conn)
    both = [holder, waiting]
    conn.execute("UPDATE procrastinate_jobs SET lock = 'k' WHERE id = ANY(%s)", (both,))
    conn.execute("UPDATE procrastinate_jobs SET queueing_lock = 'q' WHERE id = %s", (waiting,))
    at = run_page("locks")
    assert not at.exception
    locks, queueing = at.dataframe[0].value, at.dataframe[1].value
    assert list(locks["lock"]) == ["k"] and list(locks["waiting"]) == [1]
    assert list(locks["next"]) == [str(waiting)]
    assert list(queueing["queueing_lock"]) == ["q"]


def test_scheduler_panel_shows_disabled_and_its_controls(page_env, conn):
    from tests.dashboard_app import run_app

    add_periodic(conn, "app.tasks.digest", "0 8 * * *")
    controls.disable_periodic(conn, "app.tasks.digest", as_operator("alice"))
    at = run_app()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "Disabled" in d.value.columns)
    assert table["Status"][0] == "⏸ disabled"
    assert table["Disabled"][0].startswith("disabled since") and "by alice" in table["Disabled"][0]
    button(at, "periodic_enable").click().run()
    assert conn.execute("SELECT count(*) FROM jobdash_periodic_disabled").fetchone()[0] == 0
    button(at, "periodic_run").click().run()
    (task,) = conn.execute("SELECT task_name FROM procrastinate_jobs").fetchone()
    assert task == "app.tasks.digest"
