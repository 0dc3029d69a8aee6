"""Alerts in the maintenance task (every minute, any instrumented worker) and at worker start."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from jobdash.core.alerts.config import AlertConfig, check_queues, load_alert_config
from jobdash.core.alerts.engine import EvaluationReport, evaluate_alerts
from jobdash.core.alerts.signals import known_queues
from jobdash.core.database import connect
from jobdash.core.errors import ConfigError, describe_error
from jobdash.core.settings import load_ops_settings, load_settings
from jobdash.jobs.instrumentation.log_throttle import warn_throttled

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10


def run_alerts(conninfo: str) -> EvaluationReport | None:
    """Evaluate the configured rules once (None when there are none). The configuration is
    read each time, so a changed JOBDASH_ALERTS_FILE applies from the next minute."""
    ops = load_ops_settings()
    config = load_alert_config(ops)
    if config is None or not config.rules:
        return None
    with connect(
        conninfo, application_name="jobdash-alerts", connect_timeout_s=CONNECT_TIMEOUT_S
    ) as conn:
        return evaluate_alerts(
            conn,
            config,
            healthy_s=load_settings().heartbeat_healthy_s,
            public_url=ops.public_url,
        )


def run_alerts_quietly(conninfo: str) -> None:
    """run_alerts for the maintenance task: it never fails the task, and says what went wrong
    (at most once a minute per kind of problem)."""
    try:
        report = run_alerts(conninfo)
    except ConfigError as exc:
        warn_throttled(
            logger, "alerts-config", "jobdash alerts: not evaluated: %s", describe_error(exc)
        )
        return
    except Exception as exc:
        warn_throttled(
            logger, "alerts-failed", "jobdash alerts: evaluation failed: %s", describe_error(exc)
        )
        return
    if report is not None:
        logger.info("jobdash alerts: %s", report.summary())


def check_alerts_at_start(conninfo: str, app_queues: Iterable[str]) -> AlertConfig | None:
    """For `jobdash worker`: ConfigError (one line) when the alert configuration is unusable or
    a rule names a queue neither the App's tasks nor the database know."""
    config = load_alert_config(load_ops_settings())
    if config is None:
        return None
    with connect(conninfo, application_name="jobdash-alerts") as conn:
        try:
            seen = known_queues(conn)
        except Exception:  # tables missing (not migrated): the App's queues only
            seen = set()
    check_queues(config, set(app_queues) | seen)
    return config
