"""What the Alerts page reads: the configured rules, each rule's state, the last messages sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from jobdash.core.alerts.config import AlertConfig, load_alert_config
from jobdash.core.errors import ConfigError, describe_error
from jobdash.core.rows import fetch_all
from jobdash.core.settings import load_ops_settings

DELIVERIES_LIMIT = 50

STATES_SQL = """
SELECT rule_name, status, since, value, summary, evaluated_at, notified_at
  FROM jobdash_alert_state ORDER BY rule_name
"""
DELIVERIES_SQL = """
SELECT sent_at, rule_name, kind, channel, delivered, attempts, error
  FROM jobdash_alert_deliveries ORDER BY sent_at DESC, id DESC LIMIT %(limit)s
"""


@dataclass(frozen=True)
class RuleState:
    status: str  # ok | firing
    since: datetime
    value: float | None
    summary: str
    evaluated_at: datetime
    notified_at: datetime | None


@dataclass(frozen=True)
class DeliveryRow:
    sent_at: datetime
    rule: str
    kind: str
    channel: str
    delivered: bool
    attempts: int
    error: str | None


@dataclass(frozen=True)
class AlertOverview:
    states: dict[str, RuleState] = field(default_factory=dict)
    deliveries: list[DeliveryRow] = field(default_factory=list)


def configured_alerts() -> tuple[AlertConfig | None, str | None]:
    """The alert configuration, or (None, the one-line reason it cannot be used)."""
    try:
        return load_alert_config(load_ops_settings()), None
    except ConfigError as exc:
        return None, describe_error(exc)


def _named_state(
    rule_name: str,
    status: str,
    since: datetime,
    value: float | None,
    summary: str,
    evaluated_at: datetime,
    notified_at: datetime | None,
) -> tuple[str, RuleState]:
    """A row of STATES_SQL."""
    return rule_name, RuleState(status, since, value, summary, evaluated_at, notified_at)


def load_alert_overview(conn: psycopg.Connection, limit: int = DELIVERIES_LIMIT) -> AlertOverview:
    states = dict(fetch_all(conn, _named_state, STATES_SQL))
    deliveries = fetch_all(conn, DeliveryRow, DELIVERIES_SQL, {"limit": limit})
    return AlertOverview(states, deliveries)
