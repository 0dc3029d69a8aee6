"""The built-in session cookie and the sign-in service: expiry, tampering, users file changes,
secrets, the failure limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from itsdangerous import URLSafeSerializer

from jobdash.core.auth import passwords
from jobdash.core.auth.identity import ANONYMOUS, Identity, Role
from jobdash.core.auth.passwords import parse_hash
from jobdash.core.auth.service import WRONG_CREDENTIALS, build_auth_service
from jobdash.core.auth.sessions import session_secret
from jobdash.core.errors import ConfigError
from tests.auth_helpers import (
    SECRET,
    builtin_service,
    cheap_hash,
    settings,
    user_line,
    users_text,
)

T0 = 1_700_000_000
VERA = Identity("vera", Role.VIEWER, "builtin")


def test_a_session_reads_back_as_its_identity_until_it_expires():
    service = builtin_service()
    value = service.issue_session(VERA, now=T0)
    assert service.read_session(value, now=T0 + 1) == VERA
    assert service.read_session(value, now=T0 + 12 * 3600 - 1) == VERA
    assert service.read_session(value, now=T0 + 12 * 3600) is None
    assert service.read_session(value, now=T0 - 3600) is None  # issued in the future


def test_session_hours_set_the_lifetime_and_lowering_them_shortens_old_sessions():
    long = builtin_service(session_hours=48)
    value = long.issue_session(VERA, now=T0)
    assert long.read_session(value, now=T0 + 40 * 3600) == VERA
    short = builtin_service(session_hours=1)
    assert short.read_session(value, now=T0 + 2 * 3600) is None


def _payload(value: str) -> dict:
    return URLSafeSerializer("any").loads_unsafe(value)[1]


def _forge(value: str, **changes: object) -> str:
    """The payload changed, signed with another key, then given the genuine signature."""
    forged = URLSafeSerializer("not-the-secret").dumps({**_payload(value), **changes})
    return forged.rsplit(".", 1)[0] + "." + value.rsplit(".", 1)[1]


def test_a_tampered_cookie_is_nobody():
    service = builtin_service()
    value = service.issue_session(VERA, now=T0)
    assert _payload(value)["r"] == "viewer"  # readable (signed, not encrypted)...
    for forged in (
        _forge(value, r="admin"),
        _forge(value, n="alice"),
        _forge(value, exp=T0 + 10**9),
        URLSafeSerializer("not-the-secret").dumps(_payload(value)),
        value[:-2] + ("AA" if not value.endswith("AA") else "BB"),
        value + "x",
        "garbage",
        "",
        "x" * 5000,
    ):
        assert service.read_session(forged, now=T0 + 1) is None  # ...but not writable


def test_another_secret_refuses_and_the_same_secret_accepts_across_processes():
    users = users_text()
    value = builtin_service(users=users).issue_session(VERA, now=T0)
    assert builtin_service(users=users).read_session(value, now=T0 + 1) == VERA  # restart, replica
    other = builtin_service(users=users, cookie_secret="another-secret-0123456789abcdef-0123")
    assert other.read_session(value, now=T0 + 1) is None


def test_removing_a_user_or_changing_their_role_or_password_ends_their_sessions(tmp_path: Path):
    path = tmp_path / "users"
    path.write_text(users_text())
    service = builtin_service(users_file=path)
    value = service.issue_session(VERA, now=T0)
    assert service.read_session(value, now=T0 + 1) == VERA

    def rewrite(text: str, stamp: int) -> None:
        path.write_text(text)
        os.utime(path, ns=(stamp, stamp))

    rewrite(users_text("alice", "oscar") + "\n" + user_line("vera", "admin"), 1)
    assert service.read_session(value, now=T0 + 1) is None  # role changed: sign in again
    rewrite(users_text("alice", "oscar") + "\n" + user_line("vera", password="new-pw"), 2)
    assert service.read_session(value, now=T0 + 1) is None  # password changed
    rewrite(users_text("alice", "oscar"), 3)
    assert service.read_session(value, now=T0 + 1) is None  # removed
    rewrite(users_text(), 4)  # back, but with a new hash (new salt): still signed out
    assert service.read_session(value, now=T0 + 1) is None
    fresh = service.issue_session(VERA, now=T0)
    assert service.read_session(fresh, now=T0 + 1) == VERA


def test_sessions_are_only_for_builtin_users():
    with pytest.raises(ValueError):
        builtin_service().issue_session(Identity("vera", Role.VIEWER, "oidc"))
    with pytest.raises(ValueError):
        builtin_service().issue_session(Identity("nobody", Role.VIEWER, "builtin"))


def test_the_secret_must_be_long_enough_and_is_required_off_loopback():
    with pytest.raises(ConfigError, match="JOBDASH_COOKIE_SECRET must be at least 32 bytes"):
        session_secret("short", "JOBDASH_COOKIE_SECRET", "127.0.0.1")
    with pytest.raises(ConfigError, match="on 0.0.0.0 needs JOBDASH_COOKIE_SECRET"):
        session_secret(None, "JOBDASH_COOKIE_SECRET", "0.0.0.0")
    with pytest.raises(ConfigError, match="on every interface needs"):
        session_secret(None, "JOBDASH_COOKIE_SECRET", None)
    assert session_secret(SECRET, "JOBDASH_COOKIE_SECRET", "10.0.0.5") == SECRET
    loopback = {session_secret(None, "x", host) for host in ("127.0.0.1", "localhost", "::1")}
    assert len(loopback) == 3 and all(len(secret) >= 32 for secret in loopback)  # random


def test_without_a_secret_on_loopback_sessions_last_as_long_as_the_process():
    service = build_auth_service(settings(users=users_text(), cookie_secret=None), host="127.0.0.1")
    value = service.issue_session(VERA, now=T0)
    assert service.read_session(value, now=T0 + 1) == VERA
    restarted = build_auth_service(
        settings(users=users_text(), cookie_secret=None), host="127.0.0.1"
    )
    assert restarted.read_session(value, now=T0 + 1) is None


def test_streamlits_cookie_secret_is_the_fallback():
    users = users_text()
    service = build_auth_service(
        settings(users=users, cookie_secret=None), host="0.0.0.0", fallback_secret=SECRET
    )
    value = builtin_service(users=users).issue_session(VERA, now=T0)
    assert service.read_session(value, now=T0 + 1) == VERA
    with pytest.raises(ConfigError, match="^Streamlit's cookie secret must be at least 32"):
        build_auth_service(
            settings(users=users_text(), cookie_secret=None), host="::1", fallback_secret="x"
        )


def test_who_an_unsigned_request_is_depends_on_what_is_configured():
    nothing = build_auth_service(settings(cookie_secret=None), host="0.0.0.0")
    assert nothing.sign_in is None and nothing.anonymous() is ANONYMOUS
    assert nothing.read_session("anything") is None
    builtin = builtin_service()
    assert builtin.sign_in == "built-in users" and builtin.anonymous() is None
    both = build_auth_service(settings(users=users_text()), host="::1", oidc_secret=SECRET)
    assert both.sign_in == "an identity provider and built-in users"


def test_a_bad_setting_is_a_config_error_at_build():
    with pytest.raises(ConfigError, match="JOBDASH_ROLES"):
        build_auth_service(settings(roles="boss=x@y.z"), host="::1")
    with pytest.raises(ConfigError, match="JOBDASH_USERS entry 1"):
        build_auth_service(settings(users="vera:viewer"), host="::1")


def test_sign_in_right_wrong_and_unknown():
    service = builtin_service()
    assert service.attempt_sign_in("vera", "vera-pw", "10.0.0.1").identity == VERA
    wrong = service.attempt_sign_in("vera", "nope", "10.0.0.1")
    unknown = service.attempt_sign_in("nobody", "vera-pw", "10.0.0.1")
    assert wrong.identity is unknown.identity is None
    assert wrong.problem == unknown.problem == WRONG_CREDENTIALS  # no hint which was wrong
    assert wrong.status == unknown.status == 401
    assert service.attempt_sign_in("", "", "10.0.0.1").status == 401
    assert service.attempt_sign_in("vera", "x" * 5000, "10.0.0.1").status == 401


def test_five_failures_for_a_name_refuse_it_even_with_the_right_password():
    service = builtin_service()
    for attempt in range(5):
        outcome = service.attempt_sign_in("Vera", "guess", f"10.0.0.{attempt}", now=T0)
        assert outcome.status == 401
    refused = service.attempt_sign_in("vera", "vera-pw", "10.9.9.9", now=T0 + 1)
    assert refused.identity is None and refused.status == 429
    assert refused.problem == "too many failed sign-ins: try again in 5 minutes"
    assert service.attempt_sign_in("oscar", "oscar-pw", "10.9.9.9", now=T0 + 1).identity
    assert service.attempt_sign_in("vera", "vera-pw", "10.9.9.9", now=T0 + 301).identity


def test_many_failures_from_one_address_refuse_it_for_every_name(monkeypatch):
    monkeypatch.setattr(passwords, "_dummy", lambda: parse_hash(cheap_hash("x")))  # speed
    service = builtin_service()
    for attempt in range(20):
        service.attempt_sign_in(f"name-{attempt}", "guess", "10.6.6.6", now=T0)
    assert service.attempt_sign_in("oscar", "oscar-pw", "10.6.6.6", now=T0 + 1).status == 429
    assert service.attempt_sign_in("oscar", "oscar-pw", "10.7.7.7", now=T0 + 1).identity


def test_a_success_clears_the_count():
    service = builtin_service()
    for _ in range(4):
        service.attempt_sign_in("vera", "guess", "10.0.0.1", now=T0)
    assert service.attempt_sign_in("vera", "vera-pw", "10.0.0.1", now=T0).identity
    for _ in range(4):
        assert service.attempt_sign_in("vera", "guess", "10.0.0.1", now=T0).status == 401


def test_without_builtin_users_sign_in_is_not_configured():
    service = build_auth_service(settings(), host="::1", oidc_secret=SECRET)
    assert service.attempt_sign_in("vera", "vera-pw", None).status == 404
    with pytest.raises(ValueError):
        service.issue_session(VERA)
