"""The sign-in variables as core/settings.py reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobdash.core.errors import ConfigError
from jobdash.core.settings import load_auth_settings

VARIABLES = [
    "JOBDASH_USERS", "JOBDASH_USERS_FILE", "JOBDASH_ROLES", "JOBDASH_OIDC_GROUPS_CLAIM",
    "JOBDASH_COOKIE_SECRET", "STREAMLIT_SERVER_COOKIE_SECRET", "JOBDASH_SESSION_HOURS",
    "JOBDASH_COOKIE_SECURE", "JOBDASH_OIDC_SERVER_METADATA_URL", "JOBDASH_OIDC_CLIENT_ID",
    "JOBDASH_OIDC_CLIENT_SECRET", "JOBDASH_OIDC_REDIRECT_URI", "JOBDASH_OIDC_SCOPE",
]  # fmt: skip


@pytest.fixture
def env(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(env):
    settings = load_auth_settings()
    assert settings.users is None and settings.users_file is None and settings.roles == ""
    assert settings.groups_claim == "groups" and settings.session_hours == 12
    assert settings.cookie_secret is None and settings.cookie_secure is None
    assert settings.oidc_client_id is None


def test_values(env):
    env.setenv("JOBDASH_USERS_FILE", " /etc/jobdash/users ")
    env.setenv("JOBDASH_OIDC_GROUPS_CLAIM", "roles")
    env.setenv("JOBDASH_SESSION_HOURS", "0.5")
    env.setenv("JOBDASH_COOKIE_SECURE", "1")
    env.setenv("JOBDASH_OIDC_CLIENT_ID", "jobdash")
    settings = load_auth_settings()
    assert settings.users_file == Path("/etc/jobdash/users") and settings.groups_claim == "roles"
    assert settings.session_hours == 0.5 and settings.cookie_secure is True
    assert settings.oidc_client_id == "jobdash"
    env.setenv("JOBDASH_COOKIE_SECURE", "off")
    assert load_auth_settings().cookie_secure is False


def test_the_cookie_secret_falls_back_to_streamlits_variable(env):
    env.setenv("STREAMLIT_SERVER_COOKIE_SECRET", "from-streamlit")
    settings = load_auth_settings()
    assert settings.cookie_secret == "from-streamlit"
    assert settings.cookie_secret_source == "STREAMLIT_SERVER_COOKIE_SECRET"
    env.setenv("JOBDASH_COOKIE_SECRET", "own")
    settings = load_auth_settings()
    assert (settings.cookie_secret, settings.cookie_secret_source) == (
        "own",
        "JOBDASH_COOKIE_SECRET",
    )


@pytest.mark.parametrize(
    ("name", "value"), [("JOBDASH_SESSION_HOURS", "0"), ("JOBDASH_COOKIE_SECURE", "maybe")]
)
def test_bad_values_are_one_line(env, name, value):
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_auth_settings()
