"""When a worker counts as healthy."""

from __future__ import annotations

CPU_UNHEALTHY_PERCENT = 95.0


def is_worker_healthy(
    heartbeat_age_s: float, cpu_percent: float | None, threshold_s: float = 120
) -> bool:
    """Heartbeat younger than the threshold (in total seconds) and CPU below 95 %.

    Unknown CPU (a worker that was not instrumented) does not make a worker unhealthy.
    """
    if heartbeat_age_s >= threshold_s:
        return False
    return cpu_percent is None or cpu_percent < CPU_UNHEALTHY_PERCENT
