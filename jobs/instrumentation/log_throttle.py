"""Warnings that repeat at most once a minute per kind: a missing table must not flood the
worker's log with one traceback per job or heartbeat."""

from __future__ import annotations

import logging
import time

REPEAT_AFTER_S = 60.0

_last_warned: dict[str, float] = {}


def warn_throttled(logger: logging.Logger, kind: str, message: str, *args: object) -> None:
    """Log `message` as a warning with the current exception, else at debug level when the
    same kind was warned about less than a minute ago."""
    now = time.monotonic()
    last = _last_warned.get(kind)
    if last is None or now - last >= REPEAT_AFTER_S:
        _last_warned[kind] = now
        logger.warning(message, *args, exc_info=True)
    else:
        logger.debug(message, *args, exc_info=True)
