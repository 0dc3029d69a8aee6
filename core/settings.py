"""Every environment variable Jobdash reads, in one place (the README lists the same)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobdash.core.errors import ConfigError


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {raw!r}")
    return value


def _timezone(name: str) -> str:
    """An IANA time zone name (checked), UTC when unset."""
    raw = os.environ.get(name, "").strip() or "UTC"
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{name} must be an IANA time zone such as Europe/Berlin, got {raw!r}"
        ) from None
    return raw


# Args keys whose values are never shown, exported or searchable (JOBDASH_REDACT_ARGS).
DEFAULT_REDACT_ARGS = ("password", "secret", "token", "api_key", "card", "authorization")


def _patterns(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated patterns, lower-cased; unset means `default`, an empty value none."""
    if name not in os.environ:
        return default
    return tuple(p.strip().lower() for p in os.environ[name].split(",") if p.strip())


# A host name as a Host header carries it (no scheme, no port): a DNS name (optionally `*.`
# for every subdomain), an IPv4 address, or an IPv6 address in brackets.
_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
_HOST_NAME = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*|\[[0-9a-f:.]+\]")


def _hosts(name: str) -> tuple[str, ...] | None:
    entries = [e.strip().lower() for e in os.environ.get(name, "").split(",") if e.strip()]
    for entry in entries:
        if not _HOST_NAME.fullmatch(entry):
            raise ConfigError(
                f"{name}: {entry!r} is not a host name; give names such as dash.example.com, "
                "*.example.com, 10.0.0.5 or [::1], without scheme or port"
            )
    return tuple(entries) or None


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    data_dir: Path
    read_only: bool
    app_path: str | None
    heartbeat_healthy_s: float
    statement_timeout_ms: int
    queue_refresh_s: float
    workers_refresh_s: float
    failed_refresh_s: float
    scheduler_refresh_s: float
    history_refresh_s: float
    archive_retention_days: float
    minute_retention_days: float
    hour_retention_days: float
    pool_size: int
    max_concurrent_exports: int
    display_timezone: str
    worker_outage_tolerance_s: float
    # None: the default (the address `serve` binds plus the local names), see app/web/guard.py.
    allowed_hosts: tuple[str, ...] | None
    export_stall_timeout_s: float
    migrate_lock_timeout_ms: int
    redact_args: tuple[str, ...] = DEFAULT_REDACT_ARGS
    search_scan_jobs: int = 100_000
    search_scan_failed_jobs: int = 20_000


def load_redact_patterns() -> tuple[str, ...]:
    """JOBDASH_REDACT_ARGS alone: read for every job's args, so not the whole environment."""
    return _patterns("JOBDASH_REDACT_ARGS", DEFAULT_REDACT_ARGS)


def load_settings() -> Settings:
    return Settings(
        database_url=(
            os.environ.get("JOBDASH_DATABASE_URL") or os.environ.get("DATABASE_URL") or None
        ),
        data_dir=Path(os.environ.get("JOBDASH_DATA_DIR") or ".jobdash").resolve(),
        read_only=_flag("JOBDASH_READ_ONLY"),
        app_path=os.environ.get("JOBDASH_APP") or None,
        heartbeat_healthy_s=_number("JOBDASH_HEALTHY_HEARTBEAT_S", 120),
        statement_timeout_ms=int(_number("JOBDASH_STATEMENT_TIMEOUT_MS", 5000)),
        queue_refresh_s=_number("JOBDASH_REFRESH_QUEUE_S", 5),
        workers_refresh_s=_number("JOBDASH_REFRESH_WORKERS_S", 5),
        failed_refresh_s=_number("JOBDASH_REFRESH_FAILED_S", 10),
        scheduler_refresh_s=_number("JOBDASH_REFRESH_SCHEDULER_S", 30),
        history_refresh_s=_number("JOBDASH_REFRESH_HISTORY_S", 60),
        archive_retention_days=_number("JOBDASH_ARCHIVE_RETENTION_DAYS", 30),
        minute_retention_days=_number("JOBDASH_MINUTE_RETENTION_DAYS", 14),
        hour_retention_days=_number("JOBDASH_HOUR_RETENTION_DAYS", 400),
        pool_size=int(_number("JOBDASH_POOL_SIZE", 6)),
        max_concurrent_exports=int(_number("JOBDASH_MAX_CONCURRENT_EXPORTS", 2)),
        display_timezone=_timezone("JOBDASH_TIMEZONE"),
        worker_outage_tolerance_s=_number("JOBDASH_WORKER_OUTAGE_TOLERANCE_S", 300),
        allowed_hosts=_hosts("JOBDASH_ALLOWED_HOSTS"),
        export_stall_timeout_s=_number("JOBDASH_EXPORT_STALL_TIMEOUT_S", 30),
        # How long a migrate step waits for a lock on Procrastinate's tables before letting
        # the queue through and retrying: the longest a defer or fetch waits behind it.
        migrate_lock_timeout_ms=int(_number("JOBDASH_MIGRATE_LOCK_TIMEOUT_MS", 200)),
        redact_args=load_redact_patterns(),
        search_scan_jobs=int(_number("JOBDASH_SEARCH_SCAN_JOBS", 100_000)),
        # A failed job searched by its error costs a probe of its latest error: about ten
        # times a Jobs-page candidate, so the window is smaller for the same page time.
        search_scan_failed_jobs=int(_number("JOBDASH_SEARCH_SCAN_FAILED_JOBS", 20_000)),
    )


@dataclass(frozen=True)
class AuthSettings:
    """Sign-in settings as given; core/auth/ parses and checks them (ConfigError, one line)."""

    users: str | None  # JOBDASH_USERS: NAME:ROLE:HASH lines, newline or ';' separated
    users_file: Path | None  # JOBDASH_USERS_FILE: a file of such lines (# comments)
    roles: str  # JOBDASH_ROLES: who gets which role from an identity provider
    groups_claim: str  # JOBDASH_OIDC_GROUPS_CLAIM: the claim holding group names
    cookie_secret: str | None  # JOBDASH_COOKIE_SECRET, else STREAMLIT_SERVER_COOKIE_SECRET
    cookie_secret_source: str  # the variable cookie_secret came from, for error messages
    session_hours: float  # JOBDASH_SESSION_HOURS: built-in sign-in lifetime
    cookie_secure: bool | None  # JOBDASH_COOKIE_SECURE: None = Secure on https requests only
    oidc_server_metadata_url: str | None
    oidc_client_id: str | None
    oidc_client_secret: str | None
    oidc_redirect_uri: str | None
    oidc_scope: str | None


def _text(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def _tristate(name: str) -> bool | None:
    raw = os.environ.get(name, "").strip().lower()
    if raw in {"", "auto"}:
        return None
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be 1, 0 or auto, got {raw!r}")


def load_auth_settings() -> AuthSettings:
    own_secret = os.environ.get("JOBDASH_COOKIE_SECRET") or None
    streamlit_secret = os.environ.get("STREAMLIT_SERVER_COOKIE_SECRET") or None
    users_file = _text("JOBDASH_USERS_FILE")
    return AuthSettings(
        users=os.environ.get("JOBDASH_USERS") or None,
        users_file=Path(users_file) if users_file else None,
        roles=os.environ.get("JOBDASH_ROLES", ""),
        groups_claim=_text("JOBDASH_OIDC_GROUPS_CLAIM") or "groups",
        cookie_secret=own_secret or streamlit_secret,
        cookie_secret_source=(
            "JOBDASH_COOKIE_SECRET"
            if own_secret or not streamlit_secret
            else "STREAMLIT_SERVER_COOKIE_SECRET"
        ),
        session_hours=_number("JOBDASH_SESSION_HOURS", 12),
        cookie_secure=_tristate("JOBDASH_COOKIE_SECURE"),
        oidc_server_metadata_url=_text("JOBDASH_OIDC_SERVER_METADATA_URL"),
        oidc_client_id=_text("JOBDASH_OIDC_CLIENT_ID"),
        oidc_client_secret=_text("JOBDASH_OIDC_CLIENT_SECRET"),
        oidc_redirect_uri=_text("JOBDASH_OIDC_REDIRECT_URI"),
        oidc_scope=_text("JOBDASH_OIDC_SCOPE"),
    )


LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class OpsSettings:
    """Running Jobdash for real: replicas, metrics, alerts, logs."""

    read_database_url: str | None  # JOBDASH_READ_DATABASE_URL: loaders read there
    metrics_token: str | None  # JOBDASH_METRICS_TOKEN: `Authorization: Bearer` for /metrics
    public_url: str | None  # JOBDASH_PUBLIC_URL: links in alert messages
    alerts: str | None  # JOBDASH_ALERTS: alert rules, TOML text
    alerts_file: Path | None  # JOBDASH_ALERTS_FILE: the same in a file
    alert_remind_after_s: float  # JOBDASH_ALERT_REMIND_AFTER_S: reminder of a firing alert
    log_format: str  # JOBDASH_LOG_FORMAT: text | json


def read_database_url() -> str | None:
    """JOBDASH_READ_DATABASE_URL alone: every dashboard read asks, so nothing else is parsed."""
    return _text("JOBDASH_READ_DATABASE_URL")


def load_ops_settings() -> OpsSettings:
    log_format = os.environ.get("JOBDASH_LOG_FORMAT", "").strip().lower() or "text"
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"JOBDASH_LOG_FORMAT must be text or json, got {log_format!r}")
    alerts_file = _text("JOBDASH_ALERTS_FILE")
    public_url = _text("JOBDASH_PUBLIC_URL")
    if public_url and not public_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"JOBDASH_PUBLIC_URL must start with http:// or https://, got {public_url!r}"
        )
    return OpsSettings(
        read_database_url=read_database_url(),
        metrics_token=_text("JOBDASH_METRICS_TOKEN"),
        public_url=public_url.rstrip("/") if public_url else None,
        alerts=os.environ.get("JOBDASH_ALERTS", "").strip() or None,
        alerts_file=Path(alerts_file) if alerts_file else None,
        alert_remind_after_s=_number("JOBDASH_ALERT_REMIND_AFTER_S", 4 * 3600),
        log_format=log_format,
    )
