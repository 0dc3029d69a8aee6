"""The whole dashboard (the server `jobdash serve` runs) in a real browser, signed in through a
local OpenID Connect provider (oidc-provider-mock) with JOBDASH_ROLES mapping people to roles:
what a viewer, an operator, an admin and someone the mapping does not cover each get, on one
server with failed jobs whose args hold secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from jobdash.app.actions import jobs as actions
from tests.actions_helpers import as_operator, job_status, make_failed_jobs
from tests.auth_helpers import SECRET
from tests.browser.conftest import wait_for_script_idle
from tests.browser.test_failed_jobs_browser import fetch_csv_link, tick_row, toast

TIMEOUT_MS = 30_000
SECRET_ARGS = {"api_key": "sk-live-123", "customer": {"password": "hunter2"}}
ROLES = "operator=ops@acme.com,viewer=*@acme.com,admin=ada@acme.com"
ACTION_BUTTONS = re.compile(r"^(Retry|Delete|Restore|Cancel|Abort|Show unredacted args)")
EXPORT = "/export/failed-jobs.csv"


@pytest.fixture(autouse=True)
def _patient_expect() -> Iterator[None]:
    # The whole dashboard on two busy cores: give each expectation the clicks' timeout.
    expect.set_options(timeout=TIMEOUT_MS)
    yield
    expect.set_options(timeout=5_000)  # Playwright's default, for the tests after this one


def sign_in(browser: Browser, base_url: str, sub: str) -> tuple[BrowserContext, Page]:
    """A fresh browser signed in as the provider's user `sub`, back on the dashboard."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(base_url)
    page.get_by_role("button", name="Sign in with your identity provider").click()
    page.wait_for_url("**/oauth2/authorize**")
    page.get_by_role("button", name=sub, exact=True).click()
    page.wait_for_url(f"{base_url}/**")
    return context, page


def open_page(page: Page, base_url: str, path: str) -> None:
    page.goto(f"{base_url}/{path}")
    wait_for_script_idle(page)


def code(page: Page):
    return page.locator("[data-testid='stCode']")


def audit_rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT actor, action, job_ids, done FROM jobdash_audit_log ORDER BY id"
    ).fetchall()


def test_viewer_operator_admin_and_stranger_on_the_whole_dashboard(
    streamlit_server, oidc_provider, browser: Browser, database_url: str, conn
) -> None:
    jobs = make_failed_jobs(conn, 5, message="card declined", extra_args=SECRET_ARGS)
    newest = sorted(jobs, reverse=True)  # the list shows the newest first
    actions.retry_jobs(conn, [newest[4]], as_operator("cli-user"))  # someone else's action
    base_url = streamlit_server(
        database_url,
        env={
            "JOBDASH_OIDC_SERVER_METADATA_URL": f"{oidc_provider}/.well-known/openid-configuration",
            "JOBDASH_OIDC_CLIENT_ID": "jobdash",
            "JOBDASH_OIDC_CLIENT_SECRET": "unused-by-the-mock",
            "JOBDASH_OIDC_REDIRECT_URI": "http://127.0.0.1:{port}/oauth2callback",
            "JOBDASH_COOKIE_SECRET": SECRET,
            "JOBDASH_ROLES": ROLES,
        },
    )

    # A viewer (*@acme.com): the list and the detail without a single action button, args
    # redacted everywhere, the CSV of what they may see.
    context, page = sign_in(browser, base_url, "vic")
    expect(page.get_by_text("Signed in as vic@acme.com · viewer")).to_be_visible()
    open_page(page, base_url, "failed_jobs")
    expect(page.get_by_text("4 failed jobs match")).to_be_visible()
    expect(page.get_by_text("Your role (viewer) cannot retry jobs")).to_be_visible()
    expect(page.get_by_role("button", name=ACTION_BUTTONS)).to_have_count(0)
    _, rows = fetch_csv_link(page, page.get_by_role("link", name="Download CSV"))
    header, data = rows[0], rows[1:]
    assert sorted(int(r[0]) for r in data) == sorted(newest[:4])
    args = [r[header.index("args")] for r in data]
    assert all("••••" in a and "sk-live-123" not in a and "hunter2" not in a for a in args)
    for detail in (f"failed_jobs?job={newest[0]}", f"jobs?job={newest[0]}"):
        open_page(page, base_url, detail)
        expect(page.get_by_role("heading", name=f"Job {newest[0]}")).to_be_visible()
        expect(code(page).filter(has_text='"api_key": "••••"')).to_be_visible()
        expect(page.get_by_role("button", name=ACTION_BUTTONS)).to_have_count(0)
        assert "sk-live-123" not in page.content()
    context.close()

    # An operator (ops@acme.com): retries two jobs through the confirmation dialog; the audit
    # log names them, and Recent actions filters by them; no unredacted args for them either.
    context, page = sign_in(browser, base_url, "ops")
    expect(page.get_by_text("Signed in as ops@acme.com · operator")).to_be_visible()
    open_page(page, base_url, "failed_jobs")
    expect(page.get_by_text("4 failed jobs match")).to_be_visible()
    tick_row(page, 0, "Retry selected (1)")
    tick_row(page, 1, "Retry selected (2)")
    page.get_by_role("button", name="Retry selected (2)").click()
    dialog = page.locator("[data-testid='stDialog']")
    expect(dialog.get_by_text("Retry exactly 2 jobs")).to_be_visible()
    assert job_status(conn, newest[0]) == "failed"  # nothing before confirming
    dialog.get_by_role("button", name="Retry 2 jobs").click()
    expect(toast(page, "Retried 2 jobs")).to_be_visible()
    assert [job_status(conn, i) for i in newest[:2]] == ["todo", "todo"]
    actor_name, action, job_ids, done = audit_rows(conn)[-1]
    assert (actor_name, action, sorted(job_ids), done) == (
        "ops@acme.com",
        "retry",
        sorted(newest[:2]),
        2,
    )

    open_page(page, base_url, f"failed_jobs?job={newest[2]}")
    expect(page.get_by_role("button", name="Retry", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Show unredacted args")).to_have_count(0)

    open_page(page, base_url, "audit")
    expect(page.get_by_text("2 actions (newest first")).to_be_visible()
    actor = page.get_by_label("Actor")
    actor.fill("ops@acme.com")
    actor.press("Enter")
    expect(page.get_by_text("1 actions (newest first")).to_be_visible()
    grid = page.locator("[data-testid='stDataFrame']")
    expect(grid.locator("[data-testid='glide-cell-1-0']")).to_have_text("ops@acme.com")
    expect(grid.locator("[data-testid='glide-cell-2-0']")).to_have_text("retry")

    # Signing out ends the provider's session too and comes back to the sign-in page.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/oauth2/end_session**")
    page.get_by_role("button", name="End session").click()
    expect(page.get_by_role("button", name="Sign in with your identity provider")).to_be_visible()
    assert page.request.get(f"{base_url}{EXPORT}").status == 401
    context.close()

    # An admin (ada@acme.com): the one who may look at the args as stored, audited.
    context, page = sign_in(browser, base_url, "ada")
    expect(page.get_by_text("Signed in as ada@acme.com · admin")).to_be_visible()
    open_page(page, base_url, f"failed_jobs?job={newest[2]}")
    expect(code(page).filter(has_text='"api_key": "••••"')).to_be_visible()
    page.get_by_role("button", name="Show unredacted args").click()
    expect(code(page).filter(has_text='"api_key": "sk-live-123"')).to_be_visible()
    assert audit_rows(conn)[-1] == ("ada@acme.com", "view_unredacted_args", [newest[2]], 1)
    context.close()

    # Someone the mapping does not cover: the "not allowed" page on every path, no export.
    context, page = sign_in(browser, base_url, "someone")
    not_allowed = "someone@elsewhere.com is signed in but has no role in Jobdash"
    expect(page.get_by_text(not_allowed)).to_be_visible()
    open_page(page, base_url, "failed_jobs")
    expect(page.get_by_text(not_allowed)).to_be_visible()
    expect(page.get_by_text("failed jobs match")).to_have_count(0)
    refused = page.request.get(f"{base_url}{EXPORT}")
    assert refused.status == 401 and "card declined" not in refused.text()
    context.close()
