"""Every environment variable Jobdash reads, in one place (the README lists the same)."""

from __future__ import annotations

import os
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
    migrate_lock_timeout_ms: int


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
        # How long a migrate step waits for a lock on Procrastinate's tables before letting
        # the queue through and retrying: the longest a defer or fetch waits behind it.
        migrate_lock_timeout_ms=int(_number("JOBDASH_MIGRATE_LOCK_TIMEOUT_MS", 200)),
    )
