"""Action.VIEW_UNREDACTED_ARGS: an admin may read a job's args as stored (audited, uncached);
viewers and operators never see the button, and the read itself refuses them."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from jobdash.app.actions import jobs as actions
from jobdash.app.actions.unredacted import read_unredacted_args
from jobdash.app.ui.navigation import page_file
from jobdash.core.auth.identity import Identity, Role
from jobdash.core.errors import ActionError, PermissionDenied, ReadOnlyError
from tests.actions_helpers import as_operator, make_failed_jobs
from tests.dashboard_app import reset_state

SECRET_ARGS = {"api_key": "sk-live-123", "customer": {"password": "hunter2"}}
ADMIN = Identity("alice", Role.ADMIN, "builtin")
VIEWER = Identity("vera", Role.VIEWER, "builtin")
OPERATOR = Identity("ops@acme.com", Role.OPERATOR, "oidc")


def audit_rows(conn) -> list[tuple]:
    return conn.execute(
        "SELECT actor, action, job_ids, done, skipped FROM jobdash_audit_log ORDER BY id"
    ).fetchall()


def test_an_admin_reads_the_args_as_stored_and_it_is_audited(conn) -> None:
    [job_id] = make_failed_jobs(conn, 1, extra_args=SECRET_ARGS)
    args = read_unredacted_args(conn, job_id, ADMIN)
    assert args == {"n": 1, "note": "", **SECRET_ARGS}
    assert audit_rows(conn) == [("alice", "view_unredacted_args", [job_id], 1, 0)]


def test_a_deleted_job_is_read_from_the_archive(conn) -> None:
    [job_id] = make_failed_jobs(conn, 1, extra_args=SECRET_ARGS)
    actions.delete_jobs(conn, [job_id], as_operator())
    assert read_unredacted_args(conn, job_id, ADMIN)["api_key"] == "sk-live-123"


@pytest.mark.parametrize("actor", [VIEWER, OPERATOR, None], ids=["viewer", "operator", "nobody"])
def test_everyone_but_an_admin_is_refused_with_nothing_read_or_written(conn, actor) -> None:
    [job_id] = make_failed_jobs(conn, 1, extra_args=SECRET_ARGS)
    with pytest.raises(PermissionDenied, match="admin role needed to view unredacted|sign in"):
        read_unredacted_args(conn, job_id, actor)
    assert audit_rows(conn) == []


def test_read_only_mode_refuses_even_an_admin(conn, monkeypatch) -> None:
    [job_id] = make_failed_jobs(conn, 1, extra_args=SECRET_ARGS)
    monkeypatch.setenv("JOBDASH_READ_ONLY", "1")
    with pytest.raises(ReadOnlyError):
        read_unredacted_args(conn, job_id, ADMIN)
    assert audit_rows(conn) == []


def test_an_unknown_job_is_an_error_and_not_audited(conn) -> None:
    with pytest.raises(ActionError, match="job 999999 was not found"):
        read_unredacted_args(conn, 999_999, ADMIN)
    assert audit_rows(conn) == []


@pytest.fixture
def page_env(database_url, monkeypatch):
    """The pages without sign-in: everyone is the anonymous admin (a loopback dashboard)."""
    monkeypatch.setenv("JOBDASH_DATABASE_URL", database_url)
    monkeypatch.delenv("JOBDASH_READ_ONLY", raising=False)
    reset_state()
    yield database_url
    reset_state()


def detail_page(page: str, job_id: int) -> AppTest:
    at = AppTest.from_file(str(page_file(page)), default_timeout=30)
    at.query_params["job"] = str(job_id)
    return at.run()


def code_blocks(at: AppTest) -> str:
    return "\n".join(block.value for block in at.code)


@pytest.mark.parametrize("page", ["failed_jobs", "jobs"])
def test_the_button_shows_the_args_once_and_audits_the_look(page_env, conn, page) -> None:
    [job_id] = make_failed_jobs(conn, 1, extra_args=SECRET_ARGS)
    at = detail_page(page, job_id)
    assert not at.exception
    assert "sk-live-123" not in code_blocks(at) and "••••" in code_blocks(at)
    [button] = [b for b in at.button if b.key == "detail_unredacted"]
    assert button.label == "Show unredacted args"
    assert audit_rows(conn) == []  # drawing the button reads nothing

    button.click().run()
    assert not at.exception
    shown = code_blocks(at)
    assert '"api_key": "sk-live-123"' in shown and '"password": "hunter2"' in shown
    assert any("this look is in the audit log" in c.value for c in at.caption)
    assert audit_rows(conn) == [("dashboard", "view_unredacted_args", [job_id], 1, 0)]

    at.run()  # any other rerun hides them again
    assert "sk-live-123" not in code_blocks(at)
    assert len(audit_rows(conn)) == 1


@pytest.mark.parametrize("page", ["failed_jobs", "jobs"])
def test_read_only_mode_hides_the_button(page_env, conn, monkeypatch, page) -> None:
    [job_id] = make_failed_jobs(conn, 1, extra_args=SECRET_ARGS)
    monkeypatch.setenv("JOBDASH_READ_ONLY", "1")
    at = detail_page(page, job_id)
    assert not at.exception
    assert not [b for b in at.button if b.key == "detail_unredacted"]
    assert "sk-live-123" not in code_blocks(at)
