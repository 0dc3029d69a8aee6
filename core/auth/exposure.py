"""Safe by default: a dashboard reachable from the network must know who is asking."""

from __future__ import annotations

import ipaddress

from jobdash.core.errors import ConfigError


def is_loopback(host: str | None) -> bool:
    """Whether binding `host` only accepts connections from this machine."""
    if not host or not host.strip():
        return False  # Streamlit's default address is every interface
    text = host.strip().strip("[]").lower()
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(
    host: str | None,
    sign_in: str | None,
    *,
    read_only: bool,
    insecure_no_auth: bool,
) -> str:
    """The one line `serve` prints about who may use the dashboard; ConfigError to refuse.

    `sign_in` names the configured sign-in ("an identity provider", "built-in users", both)
    or is None. On a loopback address anything goes, as before; elsewhere without sign-in
    only an explicit --read-only or --insecure-no-auth lets the dashboard start.
    """
    if sign_in:
        return f"sign-in: {sign_in}"
    if is_loopback(host):
        return "no sign-in (loopback address: only this machine can connect)"
    if read_only:
        return (
            f"no sign-in on {host or 'every interface'}: read-only, "
            "anyone who can reach it can read every job"
        )
    if insecure_no_auth:
        return (
            f"no sign-in on {host or 'every interface'} (--insecure-no-auth): "
            "anyone who can reach it can retry and delete jobs"
        )
    raise ConfigError(
        f"refusing to serve on {host or 'every interface'} without sign-in: configure "
        "an identity provider or JOBDASH_USERS, or pass --read-only or --insecure-no-auth"
    )
