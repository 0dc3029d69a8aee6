"""Built-in users and auth services for tests: cheap scrypt parameters, fixed secrets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from jobdash.core.auth.passwords import hash_password
from jobdash.core.auth.service import AuthService, build_auth_service
from jobdash.core.settings import AuthSettings

SECRET = "test-cookie-secret-0123456789abcdef-0123"  # >= 32 bytes
PASSWORDS = {"alice": "alice-pw", "oscar": "oscar-pw", "vera": "vera-pw"}
ROLES = {"alice": "admin", "oscar": "operator", "vera": "viewer"}


def cheap_hash(password: str) -> str:
    # n=16 instead of 16384: the format and the checks are the same, the cost is not.
    return hash_password(password, n=16, r=1, p=1)


def user_line(name: str, role: str | None = None, password: str | None = None) -> str:
    return f"{name}:{role or ROLES[name]}:{cheap_hash(password or PASSWORDS[name])}"


def users_text(*names: str) -> str:
    return "\n".join(user_line(name) for name in names or PASSWORDS)


def settings(**changes: object) -> AuthSettings:
    base = AuthSettings(
        users=None,
        users_file=None,
        roles="",
        groups_claim="groups",
        cookie_secret=SECRET,
        cookie_secret_source="JOBDASH_COOKIE_SECRET",
        session_hours=12,
        cookie_secure=None,
        oidc_server_metadata_url=None,
        oidc_client_id=None,
        oidc_client_secret=None,
        oidc_redirect_uri=None,
        oidc_scope=None,
    )
    return replace(base, **changes)


def builtin_service(
    users_file: Path | None = None, users: str | None = None, **changes: object
) -> AuthService:
    source = {"users_file": users_file} if users_file else {"users": users or users_text()}
    return build_auth_service(settings(**source, **changes), host="127.0.0.1")
