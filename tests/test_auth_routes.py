"""The built-in sign-in over HTTP (a Starlette app with the real routes) and
`identity_from_request` for routes beside the dashboard."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from http.cookies import SimpleCookie
from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from streamlit.web.server.starlette.starlette_app_utils import create_signed_value

from jobdash.app.web.auth_routes import (
    CSRF_COOKIE,
    SIGN_IN_PATH,
    SIGN_OUT_PATH,
    auth_routes,
    check_serve_exposure,
    identity_from_request,
    safe_next,
    sign_in_url,
)
from jobdash.core.auth import passwords
from jobdash.core.auth.oidc import USER_COOKIE
from jobdash.core.auth.passwords import parse_hash
from jobdash.core.auth.service import AuthService, build_auth_service
from jobdash.core.auth.sessions import SESSION_COOKIE
from jobdash.core.errors import ConfigError
from tests.auth_helpers import SECRET, builtin_service, cheap_hash, settings, users_text
from tests.hostile import HOSTILE


def _app(get_service: Callable[[], AuthService]) -> Starlette:
    def whoami(request: Request) -> PlainTextResponse:
        identity = identity_from_request(request, get_service())
        if identity is None:
            return PlainTextResponse("nobody", status_code=401)
        return PlainTextResponse(f"{identity.name} {identity.role} {identity.source}")

    return Starlette(routes=[*auth_routes(get_service), Route("/whoami", whoami)])


@pytest.fixture
def service(monkeypatch) -> AuthService:
    monkeypatch.setattr(passwords, "_dummy", lambda: parse_hash(cheap_hash("x")))  # speed
    return builtin_service()


@pytest.fixture
def client(service: AuthService) -> TestClient:
    return TestClient(_app(lambda: service), follow_redirects=False)


def _csrf(page_html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page_html).group(1)


def _sign_in(client: TestClient, name: str, password: str, next_path: str | None = None, **extra):
    page = client.get(SIGN_IN_PATH)
    form = {"csrf": _csrf(page.text), "name": name, "password": password, **extra}
    if next_path is not None:
        form["next"] = next_path
    return client.post(SIGN_IN_PATH, data=form)


def _set_cookie(response, name: str) -> SimpleCookie:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            cookie = SimpleCookie()
            cookie.load(header)
            return cookie[name]
    raise AssertionError(f"no Set-Cookie for {name}")


def test_the_form_is_plain_html_with_a_csrf_token_bound_to_a_cookie(client):
    page = client.get(SIGN_IN_PATH)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text and 'type="password"' in page.text
    assert "<style>" in page.text  # its own CSS, nothing fetched
    csrf = _set_cookie(page, CSRF_COOKIE)
    assert csrf["httponly"] and csrf["samesite"].lower() == "strict" and csrf["path"] == "/"
    assert _csrf(page.text) != csrf.value  # the form holds an HMAC of the cookie, not a copy
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    again = client.get(SIGN_IN_PATH)
    assert _csrf(again.text) == _csrf(page.text)  # the same browser keeps its token


def test_signing_in_sets_the_session_cookie_and_goes_back_where_it_came_from(client):
    response = _sign_in(client, "oscar", "oscar-pw", "/failed?queue=a%20b")
    assert response.status_code == 303 and response.headers["location"] == "/failed?queue=a%20b"
    session = _set_cookie(response, SESSION_COOKIE)
    assert session["httponly"] and session["samesite"].lower() == "lax"
    assert session["path"] == "/" and session["max-age"] == str(12 * 3600)
    assert not session["secure"]  # plain http here
    assert client.get("/whoami").text == "oscar operator builtin"


def test_the_cookie_is_secure_on_https_or_when_configured(service):
    https = TestClient(_app(lambda: service), base_url="https://testserver", follow_redirects=False)
    assert _set_cookie(_sign_in(https, "vera", "vera-pw"), SESSION_COOKIE)["secure"]
    forced = builtin_service(users=users_text(), cookie_secure=True)  # TLS ends at a proxy
    http = TestClient(_app(lambda: forced), follow_redirects=False)
    page = http.get(SIGN_IN_PATH)
    csrf = _set_cookie(page, CSRF_COOKIE)
    assert csrf["secure"]
    http.cookies.set(CSRF_COOKIE, csrf.value)  # what the browser sends back through the proxy
    form = {"csrf": _csrf(page.text), "name": "vera", "password": "vera-pw"}
    assert _set_cookie(http.post(SIGN_IN_PATH, data=form), SESSION_COOKIE)["secure"]


@pytest.mark.parametrize(("name", "password"), [("vera", "wrong"), ("nobody", "vera-pw")])
def test_wrong_password_and_unknown_user_get_the_same_line(client, name, password):
    response = _sign_in(client, name, password)
    assert response.status_code == 401
    assert "wrong user name or password" in response.text
    assert f'value="{name}"' in response.text  # the name stays filled in
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert client.get("/whoami").status_code == 401


def test_the_rate_limit_refuses_even_the_right_password_for_a_while(client):
    for _ in range(5):
        assert _sign_in(client, "vera", "guess").status_code == 401
    refused = _sign_in(client, "vera", "vera-pw")
    assert refused.status_code == 429
    assert "too many failed sign-ins: try again in 5 minutes" in refused.text
    assert client.get("/whoami").status_code == 401


def test_a_post_without_the_csrf_token_is_refused_with_nothing_done(client):
    client.get(SIGN_IN_PATH)
    missing = client.post(SIGN_IN_PATH, data={"name": "vera", "password": "vera-pw"})
    assert missing.status_code == 403 and "expired" in missing.text
    assert SESSION_COOKIE not in missing.headers.get("set-cookie", "")
    forged = client.post(
        SIGN_IN_PATH, data={"csrf": "0" * 64, "name": "vera", "password": "vera-pw"}
    )
    assert forged.status_code == 403


def test_a_token_from_another_browser_does_not_fit_this_cookie(service):
    other = TestClient(_app(lambda: service), follow_redirects=False)
    token = _csrf(other.get(SIGN_IN_PATH).text)
    victim = TestClient(_app(lambda: service), follow_redirects=False)
    victim.get(SIGN_IN_PATH)
    response = victim.post(SIGN_IN_PATH, data={"csrf": token, "name": "vera", "password": "x"})
    assert response.status_code == 403
    fresh = TestClient(_app(lambda: service), follow_redirects=False)  # no cookie at all
    response = fresh.post(SIGN_IN_PATH, data={"csrf": token, "name": "vera", "password": "x"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "target",
    [
        "//evil.test/x",
        "https://evil.test/",
        "http:evil.test",
        "javascript:alert(1)",
        "/\\evil.test",
        "/\t/evil.test",
        "/\n/evil.test",
        "evil.test",
        "",
    ],
)
def test_no_open_redirect(client, target):
    response = _sign_in(client, "vera", "vera-pw", target)
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_safe_next_keeps_paths_on_this_site():
    assert safe_next("/history?level=hour#top") == "/history?level=hour#top"
    assert safe_next(None) == "/"
    assert sign_in_url("/failed?q=1") == "/signin?next=%2Ffailed%3Fq%3D1"
    assert sign_in_url("https://evil.test") == "/signin"


def test_every_value_on_the_page_is_escaped(client):
    for text in HOSTILE["html_and_script"]:
        page = client.get(SIGN_IN_PATH, params={"next": "/" + text})
        assert html.escape("/" + text) in page.text
        response = _sign_in(client, text[:60], "x")
        assert html.escape(text[:60]) in response.text
        if html.escape(text) != text:
            assert text not in page.text and text[:60] not in response.text


def test_an_expired_or_tampered_cookie_is_nobody(client, service):
    from jobdash.core.auth.identity import Identity, Role

    vera = Identity("vera", Role.VIEWER, "builtin")
    client.cookies.set(SESSION_COOKIE, service.issue_session(vera, now=1_000_000))
    assert client.get("/whoami").status_code == 401
    good = service.issue_session(vera)
    client.cookies.set(SESSION_COOKIE, good)
    assert client.get("/whoami").text == "vera viewer builtin"
    client.cookies.set(SESSION_COOKIE, good[:-4] + ("AAAA" if good[-4:] != "AAAA" else "BBBB"))
    assert client.get("/whoami").status_code == 401


def test_signing_out_needs_the_token_and_clears_the_cookie(client):
    _sign_in(client, "vera", "vera-pw")
    assert client.get("/whoami").status_code == 200
    assert client.post(SIGN_OUT_PATH, data={}).status_code == 403
    assert client.get("/whoami").status_code == 200  # still signed in
    page = client.get(SIGN_OUT_PATH)
    assert page.status_code == 200 and "Sign out" in page.text
    response = client.post(SIGN_OUT_PATH, data={"csrf": _csrf(page.text)})
    assert response.status_code == 303 and response.headers["location"] == SIGN_IN_PATH
    assert _set_cookie(response, SESSION_COOKIE)["max-age"] == "0"
    assert client.get("/whoami").status_code == 401


def test_odd_requests_get_short_refusals(client):
    client.get(SIGN_IN_PATH)
    assert client.post(SIGN_IN_PATH, json={"name": "vera"}).status_code == 415
    huge = {"csrf": "x", "name": "vera", "password": "x" * 10_000}
    assert client.post(SIGN_IN_PATH, data=huge).status_code == 413
    assert client.put(SIGN_IN_PATH).status_code == 405


def test_without_builtin_users_the_routes_are_absent():
    nothing = build_auth_service(settings(), host="::1")
    client = TestClient(_app(lambda: nothing), follow_redirects=False)
    assert client.get(SIGN_IN_PATH).status_code == 404
    assert client.post(SIGN_OUT_PATH, data={}).status_code == 404
    assert client.get("/whoami").text == "dashboard admin anonymous"  # no sign-in at all


def test_a_configuration_error_is_a_503_with_one_line():
    def broken() -> AuthService:
        raise ConfigError("JOBDASH_USERS entry 1: expected NAME:ROLE:HASH")

    client = TestClient(_app(broken), follow_redirects=False)
    response = client.get(SIGN_IN_PATH)
    assert response.status_code == 503
    assert response.text == "sign-in unavailable: JOBDASH_USERS entry 1: expected NAME:ROLE:HASH\n"


def _oidc_client(roles: str, users: str | None = None) -> TestClient:
    service = build_auth_service(
        settings(roles=roles, users=users), host="127.0.0.1", oidc_secret=SECRET
    )
    return TestClient(_app(lambda: service), follow_redirects=False)


def _streamlit_user(client: TestClient, origin: str = "http://testserver", **claims) -> None:
    import json

    payload = {**claims, "origin": origin, "is_logged_in": True, "provider": "default"}
    value = create_signed_value(SECRET, USER_COOKIE, json.dumps(payload)).decode()
    client.cookies.set(USER_COOKIE, value)


def test_a_route_knows_the_identity_provider_user_and_their_role():
    client = _oidc_client("operator=group:oncall,*@acme.com=viewer")
    assert client.get("/whoami").status_code == 401
    _streamlit_user(client, sub="1", email="ops@acme.com", groups=["oncall"])
    assert client.get("/whoami").text == "ops@acme.com operator oidc"
    _streamlit_user(client, sub="2", email="bob@acme.com")
    assert client.get("/whoami").text == "bob@acme.com viewer oidc"


def test_a_signed_in_person_without_a_role_is_nobody_to_a_route():
    client = _oidc_client("viewer=*@acme.com")
    _streamlit_user(client, sub="3", email="eve@evil.test")
    assert client.get("/whoami").status_code == 401


def test_a_cookie_issued_for_another_origin_is_refused():
    client = _oidc_client("viewer=*@acme.com")
    _streamlit_user(client, origin="http://testserver:8502", sub="1", email="bob@acme.com")
    assert client.get("/whoami").status_code == 401


def test_both_kinds_of_sign_in_side_by_side():
    client = _oidc_client("viewer=*@acme.com", users=users_text())
    _streamlit_user(client, sub="2", email="bob@acme.com")
    assert client.get("/whoami").text == "bob@acme.com viewer oidc"
    _sign_in(client, "alice", "alice-pw")
    assert client.get("/whoami").text == "alice admin builtin"  # the built-in session first


@pytest.fixture
def auth_env(monkeypatch) -> SimpleNamespace:
    for name in (
        "JOBDASH_USERS",
        "JOBDASH_USERS_FILE",
        "JOBDASH_ROLES",
        "JOBDASH_COOKIE_SECRET",
        "STREAMLIT_SERVER_COOKIE_SECRET",
        "JOBDASH_OIDC_SERVER_METADATA_URL",
        "JOBDASH_OIDC_CLIENT_ID",
        "JOBDASH_OIDC_CLIENT_SECRET",
        "JOBDASH_OIDC_REDIRECT_URI",
        "JOBDASH_OIDC_SCOPE",
    ):
        monkeypatch.delenv(name, raising=False)
    # Streamlit's secrets files are ours to choose (none by default, not the developer's).
    from streamlit import config

    secrets_files: list[str] = []
    real_get_option = config.get_option
    monkeypatch.setattr(
        config,
        "get_option",
        lambda key: list(secrets_files) if key == "secrets.files" else real_get_option(key),
    )
    return SimpleNamespace(env=monkeypatch, secrets_files=secrets_files)


def test_serve_on_the_network_without_sign_in_is_refused(auth_env):
    with pytest.raises(ConfigError, match="refusing to serve on 0.0.0.0 without sign-in"):
        check_serve_exposure("0.0.0.0", read_only=False, insecure_no_auth=False)
    assert "loopback" in check_serve_exposure("127.0.0.1", read_only=False, insecure_no_auth=False)
    assert "--insecure-no-auth" in check_serve_exposure(
        "0.0.0.0", read_only=False, insecure_no_auth=True
    )


def test_serve_with_builtin_users_needs_the_cookie_secret_off_loopback(auth_env):
    auth_env.env.setenv("JOBDASH_USERS", users_text("vera"))
    with pytest.raises(ConfigError, match="needs JOBDASH_COOKIE_SECRET"):
        check_serve_exposure("0.0.0.0", read_only=False, insecure_no_auth=False)
    auth_env.env.setenv("JOBDASH_COOKIE_SECRET", SECRET)
    line = check_serve_exposure("0.0.0.0", read_only=False, insecure_no_auth=False)
    assert line == "sign-in: built-in users"


def test_serve_sees_an_identity_provider_in_variables_or_in_secrets_toml(auth_env, tmp_path):
    auth_env.env.setenv("JOBDASH_OIDC_CLIENT_ID", "jobdash")
    with pytest.raises(ConfigError, match="also needs JOBDASH_OIDC_SERVER_METADATA_URL"):
        check_serve_exposure("0.0.0.0", read_only=False, insecure_no_auth=False)
    auth_env.env.delenv("JOBDASH_OIDC_CLIENT_ID")
    secrets_toml = tmp_path / "secrets.toml"
    secrets_toml.write_text(
        '[auth]\nredirect_uri = "https://jobs.acme.com/oauth2callback"\n'
        f'cookie_secret = "{SECRET}"\n'
    )
    auth_env.secrets_files[:] = [str(tmp_path / "absent.toml"), str(secrets_toml)]
    line = check_serve_exposure("0.0.0.0", read_only=False, insecure_no_auth=False)
    assert line == "sign-in: an identity provider"
