"""The Failed jobs page with AppTest against a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from jobdash.app.ui.navigation import page_file
from tests.actions_helpers import as_operator, job_status, make_failed_jobs

PAGE = str(page_file("failed_jobs"))


@pytest.fixture
def page_env(database_url, monkeypatch):
    monkeypatch.setenv("JOBDASH_DATABASE_URL", database_url)
    monkeypatch.delenv("JOBDASH_READ_ONLY", raising=False)
    return database_url


def run_page(query: dict | None = None, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    for k, v in (state or {}).items():
        at.session_state[k] = v
    return at.run()


def button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def test_lists_filters_from_url(page_env, conn):
    make_failed_jobs(conn, 3, queue="emails")
    make_failed_jobs(conn, 2, queue="billing")
    at = run_page()
    assert not at.exception
    assert any("5 failed jobs match" in t.value for t in at.text)
    at = run_page({"queue": "billing"})
    assert any("2 failed jobs match the filter" in t.value for t in at.text)
    frame = at.dataframe[0].value if at.dataframe else None
    editor = at.get("arrow_data_frame") or []
    assert frame is not None or editor


def test_selection_by_id_and_confirmation_dialog(page_env, conn):
    ids = make_failed_jobs(conn, 3)
    at = run_page()
    # The data editor's ticks are per position of the frame rendered; the page maps them to ids.
    key = "failed_editor_1"
    at.session_state[key] = {
        "edited_rows": {0: {"select": True}, 2: {"select": True}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert button(at, "delete_selected").label == "Delete selected (2)"
    button(at, "delete_selected").click().run()
    shown = " ".join(t.value for t in at.text)
    newest_first = sorted(ids, reverse=True)
    expected = sorted([newest_first[0], newest_first[2]], reverse=True)
    assert "Delete exactly 2 jobs" in shown
    for job_id in expected:
        assert str(job_id) in shown
    button(at, "confirm_ids").click().run()
    assert job_status(conn, expected[0]) is None and job_status(conn, expected[1]) is None
    assert job_status(conn, newest_first[1]) == "failed"
    assert conn.execute("SELECT actor, done FROM jobdash_audit_log").fetchall() == [
        ("dashboard", 2)
    ]


def test_read_only_hides_actions(page_env, conn, monkeypatch):
    make_failed_jobs(conn, 2)
    monkeypatch.setenv("JOBDASH_READ_ONLY", "1")
    at = run_page()
    assert not at.exception
    keys = {b.key for b in at.button}
    assert not keys & {"retry_selected", "delete_selected", "retry_all", "delete_all"}
    assert any("Read-only" in i.value for i in at.info)


def test_job_detail_shows_hostile_text_as_text(page_env, conn):
    script = "<script>alert(1)</script>"
    [job_id] = make_failed_jobs(conn, 1, message=script, note='=HYPERLINK("x")')
    at = run_page({"job": str(job_id)})
    assert not at.exception
    assert any(script in c.value for c in at.code)  # traceback as code, verbatim
    assert any("HYPERLINK" in c.value for c in at.code)  # args as JSON text
    assert not any(script in m.value for m in at.markdown)
    button(at, "detail_retry").click().run()
    assert job_status(conn, job_id) == "todo"


def test_detail_without_tracebacks_says_so(page_env, conn):
    [job_id] = make_failed_jobs(conn, 1, exception_type=None)
    at = run_page({"job": str(job_id)})
    assert any("No tracebacks recorded" in i.value for i in at.info)
    at = run_page({"job": "999999"})
    assert any("not found" in w.value for w in at.warning)


def test_recently_deleted_restore(page_env, conn):
    from jobdash.app.actions.jobs import delete_jobs

    [job_id] = make_failed_jobs(conn, 1)
    delete_jobs(conn, [job_id], as_operator("x"))
    at = run_page({"view": "deleted"})
    assert not at.exception
    at.session_state["deleted_editor"] = {
        "edited_rows": {0: {"restore": True}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    button(at, "restore_selected").click().run()
    assert job_status(conn, job_id) == "failed"


def test_audit_page_filters(page_env, conn):
    from jobdash.app.actions.jobs import retry_jobs

    [a, b] = make_failed_jobs(conn, 2)
    retry_jobs(conn, [a], as_operator("alice"))
    retry_jobs(conn, [b], as_operator("bob"))
    at = AppTest.from_file(str(Path(PAGE).parent / "audit.py"), default_timeout=30)
    at.query_params["actor"] = "bob"
    at.run()
    assert not at.exception
    assert any("1 actions" in t.value for t in at.text)
    assert list(at.dataframe[0].value["actor"]) == ["bob"]


def test_empty_lists_render(page_env):
    # No failed and no deleted jobs: the tables are empty, not an error.
    at = run_page()
    assert not at.exception
    assert any("0 failed jobs match" in t.value for t in at.text)
    at = run_page({"view": "deleted"})
    assert not at.exception
    assert any("0 recently deleted jobs" in t.value for t in at.text)


def test_an_error_search_says_how_far_it_looked(page_env, conn, monkeypatch):
    """An error filter over more failed jobs than one page searches: the count is marked ≈,
    the page says how many it searched, "Older »" searches further, the all-matching action
    names the estimate."""
    monkeypatch.setenv("JOBDASH_SEARCH_SCAN_FAILED_JOBS", "3")
    monkeypatch.setattr("jobdash.app.read.failed_jobs.COUNT_SAMPLE", 3)
    make_failed_jobs(conn, 1, exception_type="KeyError", message="rare needle")
    make_failed_jobs(conn, 5, exception_type="ValueError", message="boom")
    at = run_page({"error_contains": "needle"})
    assert not at.exception
    texts = [t.value for t in at.text]
    assert "No match among the newest 3 failed jobs" in " ".join(texts)
    assert any(
        "Searched the newest 3 failed jobs: 0 match" in c.value for c in at.caption
    ), [c.value for c in at.caption]
    assert button(at, "older") is not None
    button(at, "older").click().run()
    # The next three reach the oldest failed job: the match, and no "searched" note.
    assert not any("Searched the newest" in c.value for c in at.caption)
    assert list(at.dataframe[0].value["exception"]) == ["KeyError"]
    at = run_page({"exception_type": "ValueError"}, state={})
    assert button(at, "retry_all").label == "Retry all ≈ 6 matching"
    # None among the newest searched: older ones may match, so "all matching" stays offered.
    at = run_page({"error_contains": "needle"})
    assert button(at, "retry_all").label == "Retry all matching"
    assert not button(at, "retry_all").disabled
