"""Sign-in through an identity provider: Streamlit's st.login does the OpenID Connect dance.

Two jobs here, both free of Streamlit imports:
- `streamlit_auth_secrets()`: the `{"auth": {...}}` mapping for `st.App(secrets=...)` built
  from JOBDASH_OIDC_* variables (containers without a secrets file). None when they are
  unset, so `.streamlit/secrets.toml` `[auth]` keeps working as Streamlit documents; when
  given, they replace a file's whole `[auth]` section (st.App merges at the top level).
- `read_streamlit_user_cookie()`: the claims in Streamlit's `_streamlit_user` cookie, for
  HTTP routes beside the app (the page itself reads st.user).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TypeAlias
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer

from jobdash.core.auth.sessions import MIN_SECRET_BYTES
from jobdash.core.errors import ConfigError
from jobdash.core.settings import AuthSettings

USER_COOKIE = "_streamlit_user"
_COOKIE_MAX_AGE_S = 31 * 24 * 3600  # Streamlit's 30 days plus its one-day grace
_MAX_CHUNKS = 32
_CHUNKS = re.compile(r"chunks-(\d{1,3})")

_OIDC_VARIABLES = {
    "server_metadata_url": "JOBDASH_OIDC_SERVER_METADATA_URL",
    "client_id": "JOBDASH_OIDC_CLIENT_ID",
    "client_secret": "JOBDASH_OIDC_CLIENT_SECRET",
    "redirect_uri": "JOBDASH_OIDC_REDIRECT_URI",
}


def _is_http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


# What Streamlit accepts as a secret (streamlit.runtime.secrets.SecretsValue; core imports no UI).
SecretValue: TypeAlias = str | int | float | bool | list["SecretValue"] | dict[str, "SecretValue"]


def streamlit_auth_secrets(settings: AuthSettings) -> dict[str, SecretValue] | None:
    """What to pass as `st.App(secrets=...)`, or None when no JOBDASH_OIDC_* is set."""
    values = {
        "server_metadata_url": settings.oidc_server_metadata_url,
        "client_id": settings.oidc_client_id,
        "client_secret": settings.oidc_client_secret,
        "redirect_uri": settings.oidc_redirect_uri,
    }
    if not any(values.values()) and not settings.oidc_scope:
        return None
    missing = [_OIDC_VARIABLES[key] for key, value in values.items() if not value]
    if not settings.cookie_secret:
        missing.append("JOBDASH_COOKIE_SECRET")
    if missing:
        raise ConfigError(f"sign-in through an identity provider also needs {', '.join(missing)}")
    metadata_url, redirect_uri = values["server_metadata_url"], values["redirect_uri"]
    assert metadata_url and redirect_uri and settings.cookie_secret
    if not _is_http_url(metadata_url):
        raise ConfigError("JOBDASH_OIDC_SERVER_METADATA_URL must be an http(s) URL")
    if not _is_http_url(redirect_uri) or not urlsplit(redirect_uri).path.endswith(
        "/oauth2callback"
    ):
        raise ConfigError(
            "JOBDASH_OIDC_REDIRECT_URI must be this dashboard's URL ending in /oauth2callback"
        )
    if len(settings.cookie_secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{settings.cookie_secret_source} must be at least {MIN_SECRET_BYTES} bytes"
        )
    auth: dict[str, SecretValue] = {key: value for key, value in values.items() if value}
    auth["cookie_secret"] = settings.cookie_secret
    if settings.oidc_scope:
        auth["client_kwargs"] = {"scope": settings.oidc_scope}
    return {"auth": auth}


def _unsign(secret: str, name: str, raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        value = URLSafeTimedSerializer(secret, salt=name).loads(raw, max_age=_COOKIE_MAX_AGE_S)
    except BadSignature:  # includes SignatureExpired
        return None
    return value if isinstance(value, str) else None


def read_streamlit_user_cookie(
    cookies: Mapping[str, str], secret: str, host: str | None
) -> dict[str, object] | None:
    """The claims of a signed-in user, or None (absent, tampered, expired, another site's).

    `secret` is Streamlit's cookie secret ([auth].cookie_secret, else server.cookieSecret).
    `host` is the request's Host header: the cookie records the origin it was issued for, and
    browsers share cookies between ports of one host, so another app there is refused.
    """
    first = _unsign(secret, USER_COOKIE, cookies.get(USER_COOKIE))
    if first is None:
        return None
    chunks = _CHUNKS.fullmatch(first)
    if chunks:
        count = int(chunks.group(1))
        if not 1 <= count <= _MAX_CHUNKS:
            return None
        parts = [
            _unsign(secret, f"{USER_COOKIE}_{i}", cookies.get(f"{USER_COOKIE}_{i}"))
            for i in range(1, count + 1)
        ]
        if any(part is None for part in parts):
            return None
        first = "".join(part for part in parts if part is not None)
    try:
        payload = json.loads(first)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("is_logged_in") is not True:
        return None
    origin = payload.get("origin")
    if (
        not isinstance(origin, str)
        or not host
        or _host_key(urlsplit(origin).netloc) != _host_key(host)
    ):
        return None
    return payload


def _host_key(netloc: str) -> str:
    # "dash.acme.com" and "dash.acme.com:443" are the same site to a browser.
    text = netloc.strip().lower()
    for default in (":443", ":80"):
        text = text.removesuffix(default)
    return text
