"""Identity-provider sign-in without Streamlit: the st.App secrets mapping from JOBDASH_OIDC_*,
Streamlit's `_streamlit_user` cookie read back (made by Streamlit's own signing code), and the
exposure check of `serve`."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from streamlit.auth_util import set_cookie_with_chunks
from streamlit.web.server.starlette.starlette_app_utils import create_signed_value

from jobdash.core.auth.exposure import check_exposure, is_loopback
from jobdash.core.auth.oidc import USER_COOKIE, read_streamlit_user_cookie, streamlit_auth_secrets
from jobdash.core.errors import ConfigError
from tests.auth_helpers import SECRET, settings

OIDC = {
    "oidc_server_metadata_url": "https://idp.acme.com/.well-known/openid-configuration",
    "oidc_client_id": "jobdash",
    "oidc_client_secret": "client-secret",
    "oidc_redirect_uri": "https://jobs.acme.com/oauth2callback",
}


def test_no_oidc_variables_leave_secrets_toml_in_charge():
    assert streamlit_auth_secrets(settings()) is None


def test_the_variables_become_streamlits_auth_section():
    assert streamlit_auth_secrets(settings(**OIDC)) == {
        "auth": {
            "server_metadata_url": OIDC["oidc_server_metadata_url"],
            "client_id": "jobdash",
            "client_secret": "client-secret",
            "redirect_uri": "https://jobs.acme.com/oauth2callback",
            "cookie_secret": SECRET,
        }
    }
    scoped = streamlit_auth_secrets(settings(**OIDC, oidc_scope="openid email groups"))
    assert scoped["auth"]["client_kwargs"] == {"scope": "openid email groups"}


def test_the_mapping_is_accepted_by_st_app():
    import streamlit as st

    st.App("page.py", secrets=streamlit_auth_secrets(settings(**OIDC)))  # validates, no server


def test_missing_variables_are_named_in_one_line():
    partial = {**OIDC, "oidc_client_secret": None}
    with pytest.raises(ConfigError) as missing:
        streamlit_auth_secrets(settings(**partial, cookie_secret=None))
    assert str(missing.value) == (
        "sign-in through an identity provider also needs "
        "JOBDASH_OIDC_CLIENT_SECRET, JOBDASH_COOKIE_SECRET"
    )


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"oidc_redirect_uri": "https://jobs.acme.com/callback"}, "ending in /oauth2callback"),
        ({"oidc_redirect_uri": "jobs.acme.com/oauth2callback"}, "ending in /oauth2callback"),
        ({"oidc_server_metadata_url": "file:///etc/passwd"}, "must be an http(s) URL"),
        ({"cookie_secret": "short"}, "at least 32 bytes"),
    ],
)
def test_unusable_values_are_refused(changes, why):
    with pytest.raises(ConfigError, match=why.replace("(", r"\(").replace(")", r"\)")):
        streamlit_auth_secrets(settings(**{**OIDC, **changes}))


CLAIMS = {"sub": "alice", "email": "alice@acme.com", "groups": ["oncall"]}


def _streamlit_cookies(payload: dict, secret: str = SECRET) -> dict[str, str]:
    """The cookies Streamlit's callback sets (its own chunking and signing code)."""
    cookies: dict[str, str] = {}
    set_cookie_with_chunks(
        lambda name, value: cookies.__setitem__(
            name, create_signed_value(secret, name, value).decode()
        ),
        lambda name, value: create_signed_value(secret, name, value),
        USER_COOKIE,
        payload,
        cookie_attr_size=60,
    )
    return cookies


def _signed_in(origin: str = "http://127.0.0.1:8501", **claims: object) -> dict:
    return {**CLAIMS, **claims, "origin": origin, "is_logged_in": True, "provider": "default"}


def test_streamlits_cookie_gives_the_claims_back():
    cookies = _streamlit_cookies(_signed_in())
    assert list(cookies) == [USER_COOKIE]
    claims = read_streamlit_user_cookie(cookies, SECRET, "127.0.0.1:8501")
    assert claims is not None and claims["email"] == "alice@acme.com"
    assert claims["groups"] == ["oncall"]


def test_a_big_cookie_in_chunks_is_put_back_together():
    cookies = _streamlit_cookies(_signed_in(groups=[secrets.token_hex(16) for _ in range(300)]))
    assert len(cookies) > 2
    claims = read_streamlit_user_cookie(cookies, SECRET, "127.0.0.1:8501")
    assert claims is not None and len(claims["groups"]) == 300
    del cookies[f"{USER_COOKIE}_2"]
    assert read_streamlit_user_cookie(cookies, SECRET, "127.0.0.1:8501") is None


def test_a_wrong_secret_tampering_or_another_sites_cookie_is_nobody():
    cookies = _streamlit_cookies(_signed_in())
    other_secret = "another-secret-0123456789abcdef"
    assert read_streamlit_user_cookie(cookies, other_secret, "127.0.0.1:8501") is None
    tampered = {USER_COOKIE: cookies[USER_COOKIE][:-3] + "abc"}
    assert read_streamlit_user_cookie(tampered, SECRET, "127.0.0.1:8501") is None
    assert read_streamlit_user_cookie(cookies, SECRET, "127.0.0.1:9999") is None  # another port
    assert read_streamlit_user_cookie(cookies, SECRET, None) is None
    assert read_streamlit_user_cookie({}, SECRET, "127.0.0.1:8501") is None
    logged_out = _streamlit_cookies({**_signed_in(), "is_logged_in": False})
    assert read_streamlit_user_cookie(logged_out, SECRET, "127.0.0.1:8501") is None
    not_json = {USER_COOKIE: create_signed_value(SECRET, USER_COOKIE, "{nope").decode()}
    assert read_streamlit_user_cookie(not_json, SECRET, "127.0.0.1:8501") is None
    signed = create_signed_value(SECRET, "other", json.dumps(_signed_in()))
    wrong_salt = {USER_COOKIE: signed.decode()}
    assert read_streamlit_user_cookie(wrong_salt, SECRET, "127.0.0.1:8501") is None


class _MonthOldSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 32 * 24 * 3600  # past Streamlit's 30 days and its grace day


def test_an_expired_cookie_is_nobody():
    value = json.dumps(_signed_in())
    fresh = URLSafeTimedSerializer(SECRET, salt=USER_COOKIE).dumps(value)
    assert read_streamlit_user_cookie({USER_COOKIE: fresh}, SECRET, "127.0.0.1:8501")
    old = URLSafeTimedSerializer(SECRET, salt=USER_COOKIE, signer=_MonthOldSigner).dumps(value)
    assert read_streamlit_user_cookie({USER_COOKIE: old}, SECRET, "127.0.0.1:8501") is None


def test_default_ports_name_the_same_site():
    cookies = _streamlit_cookies(_signed_in(origin="https://jobs.acme.com"))
    assert read_streamlit_user_cookie(cookies, SECRET, "jobs.acme.com")
    assert read_streamlit_user_cookie(cookies, SECRET, "JOBS.acme.com:443")
    assert read_streamlit_user_cookie(cookies, SECRET, "evil.test") is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("", False),
        (None, False),
        ("jobs.acme.com", False),
    ],
)
def test_loopback_addresses(host, expected):
    assert is_loopback(host) is expected


def test_serving_on_the_network_needs_sign_in_or_an_explicit_flag():
    with pytest.raises(ConfigError) as refused:
        check_exposure("0.0.0.0", None, read_only=False, insecure_no_auth=False)
    assert "refusing to serve on 0.0.0.0 without sign-in" in str(refused.value)
    assert "--read-only or --insecure-no-auth" in str(refused.value)
    assert check_exposure("0.0.0.0", "built-in users", read_only=False, insecure_no_auth=False) == (
        "sign-in: built-in users"
    )
    assert "read-only" in check_exposure("0.0.0.0", None, read_only=True, insecure_no_auth=False)
    assert "--insecure-no-auth" in check_exposure(
        "0.0.0.0", None, read_only=False, insecure_no_auth=True
    )
    assert "loopback" in check_exposure("127.0.0.1", None, read_only=False, insecure_no_auth=False)
