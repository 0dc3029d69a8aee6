"""Log lines as text or, with JOBDASH_LOG_FORMAT=json, one JSON object per line.

The CLI sets logging up through `configure_logging` (every command, the worker included);
the dashboard's process (Streamlit's, which configured its own loggers before importing
server.py) through `apply_log_format`, which also switches Streamlit's and uvicorn's handlers.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from jobdash.core.settings import load_ops_settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that have handlers of their own (not only the root's) in the dashboard's process.
_OWN_HANDLER_PREFIXES = ("streamlit", "uvicorn")
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", ...extra fields, "exception"}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.process:
            entry["pid"] = record.process
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: int) -> str:
    """Root logging for a command, in the configured format; returns the format's name."""
    log_format = load_ops_settings().log_format
    handler = logging.StreamHandler()
    handler.setFormatter(make_formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    return log_format


def apply_log_format() -> None:
    """In the dashboard's process: JSON on the root logger and on the handlers Streamlit and
    uvicorn installed (text stays as they configured it)."""
    if load_ops_settings().log_format != "json":
        return
    formatter = JsonFormatter()
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    names = [
        name for name in logging.root.manager.loggerDict if name.startswith(_OWN_HANDLER_PREFIXES)
    ]
    for logger in [root, *(logging.getLogger(name) for name in names)]:
        for handler in logger.handlers:
            handler.setFormatter(formatter)
