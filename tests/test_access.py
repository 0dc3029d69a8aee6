"""Roles are enforced where the write happens: every action refuses a viewer and nobody, with
nothing changed; the export route refuses a request without the page's session; `serve` on a
network address refuses to start without sign-in."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from jobdash.app.actions import jobs as actions
from jobdash.app.cli.main import main
from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.app.web.auth_routes import AUTH_ROUTES, current_auth, reset_auth
from jobdash.app.web.routes import ROUTES
from jobdash.core.auth.identity import Identity, Role
from jobdash.core.auth.sessions import SESSION_COOKIE
from jobdash.core.errors import PermissionDenied
from tests.actions_helpers import as_operator, make_failed_jobs
from tests.auth_helpers import SECRET, users_text
from tests.streamlit_process import (
    free_port,
    open_stream,
    run_script,
    stop,
    texts,
    wait_until_healthy,
)

VIEWER = Identity("vera", Role.VIEWER, "builtin")


def every_action(job_ids: list[int], actor: Identity | None):
    everything = FailedJobFilter()
    return {
        "retry": lambda conn: actions.retry_jobs(conn, job_ids, actor),
        "delete": lambda conn: actions.delete_jobs(conn, job_ids, actor),
        "restore": lambda conn: actions.restore_jobs(conn, job_ids, actor),
        "retry all": lambda conn: actions.retry_all_matching(conn, everything, actor),
        "delete all": lambda conn: actions.delete_all_matching(conn, everything, actor),
        "retry stalled": lambda conn: actions.retry_stalled_jobs(conn, actor),
    }


def state(conn) -> tuple:
    jobs = conn.execute("SELECT id, status::text FROM procrastinate_jobs ORDER BY id").fetchall()
    audit = conn.execute("SELECT count(*) FROM jobdash_audit_log").fetchone()
    archived = conn.execute("SELECT count(*) FROM jobdash_deleted_jobs").fetchone()
    return jobs, audit, archived


@pytest.mark.parametrize("actor", [VIEWER, None], ids=["viewer", "nobody"])
def test_every_action_refuses_without_the_role_and_changes_nothing(conn, actor) -> None:
    ids = make_failed_jobs(conn, 3)
    before = state(conn)
    for name, act in every_action(ids, actor).items():
        with pytest.raises(PermissionDenied, match="sign in to|role needed to"):
            act(conn)
        assert state(conn) == before, name


def test_an_operator_may_and_is_audited_under_their_name(conn) -> None:
    [job_id] = make_failed_jobs(conn, 1)
    assert actions.retry_jobs(conn, [job_id], as_operator("ops@acme.com")).done == (job_id,)
    assert conn.execute("SELECT actor FROM jobdash_audit_log").fetchall() == [("ops@acme.com",)]


@pytest.fixture
def signed_in_routes(monkeypatch, database_url):
    """The export route and the sign-in routes, with built-in users and a cookie secret."""
    monkeypatch.setenv("JOBDASH_DATABASE_URL", database_url)
    monkeypatch.setenv("JOBDASH_USERS", users_text("vera", "oscar"))
    monkeypatch.setenv("JOBDASH_COOKIE_SECRET", SECRET)
    reset_auth()
    yield TestClient(Starlette(routes=[*ROUTES, *AUTH_ROUTES]))
    reset_auth()


def test_the_export_needs_the_same_session_as_the_page(signed_in_routes, conn) -> None:
    make_failed_jobs(conn, 2)
    client = signed_in_routes
    anonymous = client.get("/export/failed-jobs.csv")
    assert anonymous.status_code == 401 and "sign in" in anonymous.text
    assert "args" not in anonymous.text  # nothing of a job leaks
    cookie = current_auth().issue_session(Identity("vera", Role.VIEWER, "builtin"))
    viewer = client.get("/export/failed-jobs.csv", cookies={SESSION_COOKIE: cookie})
    assert viewer.status_code == 200  # viewers may download what they may see
    assert viewer.headers["x-content-type-options"] == "nosniff"
    assert viewer.headers["content-disposition"].startswith("attachment;")
    forged = client.get("/export/failed-jobs.csv", cookies={SESSION_COOKIE: cookie + "x"})
    assert forged.status_code == 401


def test_serve_on_a_network_address_without_sign_in_refuses(database_url, capsys, monkeypatch):
    for name in ("JOBDASH_USERS", "JOBDASH_USERS_FILE", "JOBDASH_OIDC_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    code = main(["serve", "--host", "0.0.0.0", "--port", "1", "--database-url", database_url])
    assert code == 2
    assert "refusing to serve on 0.0.0.0 without sign-in" in capsys.readouterr().err


def test_serve_on_a_network_address_with_sign_in_starts_and_asks_to_sign_in(
    database_url, tmp_path
) -> None:
    """The other half: with built-in users and a cookie secret, `serve --host 0.0.0.0` starts
    (saying which sign-in on one line) and a visitor gets the sign-in page, not the jobs."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JOBDASH_OIDC_", "JOBDASH_USERS", "JOBDASH_ROLES"))
        and k not in {"JOBDASH_ALLOWED_HOSTS", "JOBDASH_READ_ONLY"}
    }
    env = {**inherited, "JOBDASH_USERS": users_text("vera"), "JOBDASH_COOKIE_SECRET": SECRET}
    port = free_port()
    log_path = tmp_path / "serve.log"
    command = [sys.executable, "-m", "jobdash", "serve", "--host", "0.0.0.0", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--database-url", database_url],
            cwd=tmp_path,  # no .streamlit/secrets.toml of the developer's
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = wait_until_healthy(process, port, log_path)
        with open_stream(base_url) as ws:
            shown = texts(run_script(ws))
    finally:
        stop(process)
    assert "jobdash serve: sign-in: built-in users" in log_path.read_text()
    assert "Sign in to Jobdash" in shown
    assert "Sign in with a Jobdash user name" in shown
    assert "failed jobs" not in shown.lower()
