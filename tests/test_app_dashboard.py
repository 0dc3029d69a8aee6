"""The dashboard page through AppTest, against a real PostgreSQL with crafted data."""

from __future__ import annotations

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from jobdash.app.cache import data
from tests.dashboard_app import reset_state, run_app
from tests.dashboard_data import add_error, add_job, add_periodic, add_worker
from tests.hostile import HOSTILE

PANEL_TITLES = ["Queue Statistics", "Worker Health", "Scheduled Tasks Timeline", "Failed Jobs"]
SCRIPT_TAG = "<script>alert(1)</script>"
IMG_TAG = "<img src=x onerror=alert(1)>"
MD_LINK = "[click](javascript:alert(1))"








def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def all_text(at: AppTest) -> str:
    """Every string the page shows outside tables (markdown-ish and text elements)."""
    parts: list[str] = []
    for kind in (
        "title",
        "subheader",
        "caption",
        "markdown",
        "text",
        "error",
        "warning",
        "info",
        "success",
    ):
        parts.extend(str(e.value) for e in at.get(kind))
    return "\n".join(parts)


def frames_text(at: AppTest) -> str:
    return "\n".join(df.value.to_string() for df in at.dataframe)


def test_page_renders_all_four_panels_with_data(dashboard: str, conn: psycopg.Connection) -> None:
    add_job(conn, queue="emails")
    add_job(conn, queue="emails")
    failed = add_job(conn, queue="reports", task="tasks.report", final_status="failed")
    add_error(conn, failed, "ValueError", "bad input")
    add_worker(conn, "web-1", 4242)
    add_periodic(conn, "tasks.cleanup", "* * * * * */10")  # never late: ticks every 10 s

    at = run_app()

    assert not at.exception
    assert [t.value for t in at.title] == ["Background Jobs Dashboard"]
    assert "Real-time monitoring of queue, workers, and scheduler" in all_text(at)
    assert [s.value for s in at.subheader] == PANEL_TITLES
    metrics = metric_values(at)
    assert metrics["Current queue size"] == "2"
    assert metrics["Failed jobs"] == "1"
    assert metrics["Failed"] == "1"
    assert metrics["Workers"] == "1"
    assert metrics["Scheduled tasks"] == "1"
    tables = frames_text(at)
    assert "emails" in tables and "reports" in tables
    assert "ValueError: bad input" in tables
    assert "tasks.cleanup" in tables
    assert "web-1:4242" in all_text(at)
    captions = [c.value for c in at.caption]
    assert any(c.startswith("updated ") and c.endswith("· every 5 s") for c in captions)
    assert any(c.endswith("· every 30 s") for c in captions)
    footer = captions[-1]
    assert "queue statistics every 5 s" in footer and "failed jobs every 10 s" in footer
    assert not at.error and not at.warning


def test_intervals_come_from_settings(dashboard: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBDASH_REFRESH_FAILED_S", "2")
    at = run_app()
    assert not at.exception
    assert "failed jobs every 2 s" in at.caption[-1].value


def test_a_failing_loader_shows_its_notice_while_the_others_render(
    dashboard: str, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_job(conn, queue="emails")

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("scheduler query exploded")

    import jobdash.app.read.dashboard
    import jobdash.app.read.schedule

    monkeypatch.setattr(jobdash.app.read.schedule, "load_schedule_state", explode)
    at = run_app()

    assert not at.exception
    assert [s.value for s in at.subheader] == PANEL_TITLES
    errors = [e.value for e in at.error]
    assert len(errors) == 1
    assert errors[0].startswith("Scheduled Tasks Timeline unavailable — RuntimeError")
    assert "scheduler query exploded" in errors[0]
    metrics = metric_values(at)
    assert metrics["Current queue size"] == "1"
    assert "Workers" in metrics and "Failed jobs" in metrics


def test_a_panel_keeps_its_last_good_data_when_loading_fails(
    dashboard: str, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_job(conn, queue="emails")
    at = run_app()
    assert metric_values(at)["Current queue size"] == "1"

    add_job(conn, queue="emails")

    def timeout(*args: object, **kwargs: object) -> None:
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")

    import jobdash.app.read.dashboard

    monkeypatch.setattr(jobdash.app.read.dashboard, "load_queue_stats", timeout)
    data.invalidate(data.QUEUE_STATS)
    at.run()

    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1
    assert warnings[0].startswith("stale since ")
    assert "statement timeout" in warnings[0]
    assert metric_values(at)["Current queue size"] == "1"  # the last good value, still shown

    monkeypatch.undo()
    monkeypatch.setenv("JOBDASH_DATABASE_URL", dashboard)
    data.invalidate(data.QUEUE_STATS)
    at.run()
    assert not at.warning
    assert metric_values(at)["Current queue size"] == "2"


def test_without_a_configured_database_the_page_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBDASH_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    at = run_app()
    assert not at.exception
    assert "No database configured" in at.error[0].value


def test_with_the_database_down_every_panel_says_so_without_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing listens on port 1: connections are refused at once.
    monkeypatch.setenv("JOBDASH_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nothing")
    reset_state()
    try:
        at = run_app()
    finally:
        reset_state()
    assert not at.exception
    errors = [e.value.replace("\\", "") for e in at.error]
    assert len(errors) == 4
    for title, error in zip(PANEL_TITLES, errors, strict=True):
        assert error.startswith(
            f"{title} unavailable — database unreachable (cannot connect to 127.0.0.1:1/nothing"
        )


def test_a_bad_setting_is_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBDASH_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nothing")
    monkeypatch.setenv("JOBDASH_REFRESH_QUEUE_S", "soon")
    at = run_app()
    assert not at.exception
    assert "JOBDASH" in at.error[0].value and "REFRESH" in at.error[0].value


def test_hostile_job_data_is_rendered_as_text(dashboard: str, conn: psycopg.Connection) -> None:
    hostile = HOSTILE["html_and_script"] + HOSTILE["markdown"]
    job = add_job(
        conn,
        queue=IMG_TAG,
        task=SCRIPT_TAG,
        args={"payload": MD_LINK},
        final_status="failed",
    )
    add_error(conn, job, "ValueError", " ".join(hostile))
    add_worker(conn, "<b>host</b>", 1)
    add_periodic(conn, "![img](http://127.0.0.1/x.png)", "0 * * * *")

    at = run_app()

    assert not at.exception
    # No element may let HTML through.
    for element in at.markdown:
        assert not element.proto.allow_html
    tables = frames_text(at)
    assert SCRIPT_TAG in tables and IMG_TAG in tables
    assert MD_LINK.replace('"', "") in tables.replace('"', "").replace("\\", "")
    assert "![img](http://127.0.0.1/x.png)" in tables
    # Outside tables, job data appears only in plain-text elements.
    markdownish = "\n".join(
        str(e.value)
        for kind in ("markdown", "caption", "error", "warning", "info", "success")
        for e in at.get(kind)
    )
    for text in (SCRIPT_TAG, IMG_TAG, "<b>host</b>", "![img]"):
        assert text not in markdownish
    assert "<b>host</b>:1 (w)" in [t.value for t in at.text]
