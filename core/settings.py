"""Every environment variable Jobdash reads, in one place (the README lists the same)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

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
    # None: the default (the address `serve` binds plus the local names), see app/web/guard.py.
    allowed_hosts: tuple[str, ...] | None
    export_stall_timeout_s: float


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
        allowed_hosts=_hosts("JOBDASH_ALLOWED_HOSTS"),
        export_stall_timeout_s=_number("JOBDASH_EXPORT_STALL_TIMEOUT_S", 30),
    )
