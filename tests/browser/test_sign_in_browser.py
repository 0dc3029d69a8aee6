"""Real-browser sign-in: through a local OpenID Connect provider (oidc-provider-mock on
127.0.0.1) and through the built-in form, on one tiny st.App using app/ui/auth.py."""

from __future__ import annotations

from pathlib import Path

from tests.auth_helpers import SECRET, users_text
from tests.browser.conftest import wait_for_script_idle

AUTH_APP = Path(__file__).resolve().parents[1] / "auth_app" / "server.py"
def test_sign_in_through_the_identity_provider_and_the_builtin_form(
    streamlit_server, oidc_provider, browser
):
    base_url = streamlit_server(
        "postgresql://unused",
        script=AUTH_APP,
        env={
            "JOBDASH_OIDC_SERVER_METADATA_URL": f"{oidc_provider}/.well-known/openid-configuration",
            "JOBDASH_OIDC_CLIENT_ID": "jobdash",
            "JOBDASH_OIDC_CLIENT_SECRET": "unused-by-the-mock",
            "JOBDASH_OIDC_REDIRECT_URI": "http://127.0.0.1:{port}/oauth2callback",
            "JOBDASH_COOKIE_SECRET": SECRET,
            "JOBDASH_ROLES": "operator=group:oncall,viewer=*@acme.com",
            "JOBDASH_USERS": users_text("vera"),
        },
    )

    # The identity provider: operator through the groups claim.
    context = browser.new_context()
    page = context.new_page()
    page.goto(base_url)
    page.get_by_role("button", name="Sign in with your identity provider").click()
    page.wait_for_url("**/oauth2/authorize**")
    page.get_by_role("button", name="ops").click()
    page.get_by_text("IDENTITY: ops@acme.com ROLE: operator SOURCE: oidc").wait_for()
    page.get_by_text("Signed in as ops@acme.com · operator").wait_for()
    # A route beside the page knows the same person from Streamlit's cookie; another browser
    # with the same URL does not.
    assert page.request.get(f"{base_url}/whoami").text() == "ops@acme.com operator oidc"
    stranger = browser.new_context()
    assert stranger.request.get(f"{base_url}/whoami").status == 401
    stranger.close()
    context.close()

    # Someone the roles do not mention: the "not allowed" page, nothing else.
    context = browser.new_context()
    page = context.new_page()
    page.goto(base_url)
    page.get_by_role("button", name="Sign in with your identity provider").click()
    page.wait_for_url("**/oauth2/authorize**")
    page.get_by_role("button", name="eve").click()
    page.get_by_text("eve@evil.test is signed in but has no role in Jobdash").wait_for()
    wait_for_script_idle(page)
    assert page.get_by_text("IDENTITY:").count() == 0
    context.close()

    # The built-in form, back to the page with the HttpOnly session cookie it set.
    context = browser.new_context()
    page = context.new_page()
    page.goto(base_url)
    page.get_by_role("link", name="Sign in with a Jobdash user name").click()
    page.wait_for_url("**/signin**")
    page.get_by_label("User name").fill("vera")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("wrong user name or password").wait_for()
    page.get_by_label("Password").fill("vera-pw")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("IDENTITY: vera ROLE: viewer SOURCE: builtin").wait_for()
    assert page.request.get(f"{base_url}/whoami").text() == "vera viewer builtin"
    page.get_by_role("link", name="Sign out").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin")
    assert page.request.get(f"{base_url}/whoami").status == 401
    page.goto(base_url)
    page.get_by_role("button", name="Sign in with your identity provider").wait_for()
    context.close()
