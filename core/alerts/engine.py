"""Evaluating every rule once, and telling the team: one message when a rule starts firing, a
reminder while it keeps firing (after its remind-after time), one when it resolves.

Runs in the maintenance task of an instrumented worker, every minute, so alerts fire with no
browser open. A session advisory lock makes it one evaluator at a time across all workers: a
second worker arriving meanwhile skips. State (ok / firing since …) and every message sent are
in jobdash_alert_state / jobdash_alert_deliveries, which the Alerts page reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from jobdash.core.alerts.config import AlertConfig, Channel, Rule
from jobdash.core.alerts.notify import Delivery, Message, deliver
from jobdash.core.alerts.signals import Observation, observe

logger = logging.getLogger(__name__)

# Arbitrary, fixed: one alert evaluator at a time per database ("jdal").
ALERTS_LOCK_KEY = 0x6A64616C
DELIVERY_RETENTION_DAYS = 30

STATE_SQL = """
SELECT rule_name, status, since, notified_at FROM jobdash_alert_state
"""
SAVE_STATE_SQL = """
INSERT INTO jobdash_alert_state (rule_name, status, since, value, summary, evaluated_at,
                                 notified_at)
VALUES (%(rule)s, %(status)s, %(since)s, %(value)s, %(summary)s, %(now)s, %(notified_at)s)
ON CONFLICT (rule_name) DO UPDATE
   SET status = excluded.status, since = excluded.since, value = excluded.value,
       summary = excluded.summary, evaluated_at = excluded.evaluated_at,
       notified_at = excluded.notified_at
"""
RECORD_DELIVERY_SQL = """
INSERT INTO jobdash_alert_deliveries (rule_name, kind, channel, sent_at, attempts, delivered,
                                      error, message)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""
PRUNE_SQL = """
DELETE FROM jobdash_alert_deliveries
 WHERE sent_at < now() - make_interval(days => %(days)s)
"""

Sender = Callable[[Channel, Message], Delivery]


@dataclass
class EvaluationReport:
    skipped: bool = False  # another evaluator held the lock
    evaluated: int = 0
    sent: list[tuple[str, str]] = field(default_factory=list)  # (rule, kind)
    errors: list[str] = field(default_factory=list)  # rules that could not be evaluated

    def summary(self) -> str:
        if self.skipped:
            return "skipped (another worker is evaluating)"
        sent = ", ".join(f"{kind} {rule}" for rule, kind in self.sent) or "no message"
        failed = f"; {len(self.errors)} rules failed" if self.errors else ""
        return f"{self.evaluated} rules evaluated, {sent}{failed}"


@dataclass(frozen=True)
class _State:
    status: str
    since: datetime
    notified_at: datetime | None


def link(public_url: str | None, path: str) -> str | None:
    return f"{public_url}/{path}" if public_url else None


def compose(
    kind: str,
    rule: Rule,
    seen: Observation,
    since: datetime | None,
    public_url: str | None,
    now: datetime | None = None,
) -> Message:
    """The message of one kind about one rule (pure)."""
    label = {"firing": "FIRING", "reminder": "STILL FIRING", "resolved": "RESOLVED",
             "test": "TEST"}[kind]  # fmt: skip
    url = link(public_url, seen.link)
    lines = [f"[{label}] {rule.name}: {seen.summary}", f"Condition: {rule.describe()}"]
    if kind in {"firing", "reminder"} and since is not None:
        lines.append(f"Firing since {since:%Y-%m-%d %H:%M} UTC")
    if kind == "resolved" and since is not None and now is not None:
        lines.append(f"Fired for {max(1, round((now - since).total_seconds() / 60))} min")
    if kind == "test":
        lines.append(
            "This is a test message sent from the Alerts page; the rule "
            + ("would fire now." if seen.firing else "is not firing now.")
        )
    if url:
        lines.append(f"Details: {url}")
    if public_url:
        lines.append(f"Alerts: {link(public_url, 'alerts')}")
    return Message(
        kind=kind,
        rule=rule.name,
        rule_kind=rule.kind,
        subject=f"[Jobdash] {label}: {rule.name}",
        text="\n".join(lines),
        summary=seen.summary,
        value=seen.value,
        condition=rule.describe(),
        since=since.isoformat() if since else None,
        url=url,
    )


def next_message(
    state: _State | None, seen: Observation, now: datetime, remind_after_s: float
) -> str | None:
    """Which message (if any) this observation calls for (pure)."""
    firing_before = state is not None and state.status == "firing"
    if seen.firing and not firing_before:
        return "firing"
    if seen.firing and state is not None:
        if state.notified_at is None:
            return "firing"  # no channel took the firing message: try again
        elapsed = (now - state.notified_at).total_seconds()
        return "reminder" if elapsed >= remind_after_s else None
    if not seen.firing and firing_before:
        return "resolved"
    return None


def send_to_channels(
    conn: psycopg.Connection,
    config: AlertConfig,
    rule: Rule,
    message: Message,
    now: datetime,
    sender: Sender = deliver,
) -> list[Delivery]:
    """Send `message` to each of the rule's channels and record each delivery."""
    deliveries = [sender(channel, message) for channel in config.channels_of(rule)]
    for d in deliveries:
        conn.execute(
            RECORD_DELIVERY_SQL,
            (
                rule.name,
                message.kind,
                d.channel,
                now,
                d.attempts,
                d.delivered,
                d.error,
                message.text,
            ),
        )
        if not d.delivered:
            logger.warning(
                "jobdash alerts: %s message of %r not delivered to %s after %d attempts: %s",
                message.kind, rule.name, d.channel, d.attempts, d.error,
            )  # fmt: skip
    return deliveries


def evaluate_rule(
    conn: psycopg.Connection,
    config: AlertConfig,
    rule: Rule,
    state: _State | None,
    now: datetime,
    *,
    healthy_s: float,
    public_url: str | None,
    sender: Sender = deliver,
) -> str | None:
    """Observe one rule, send what its state change calls for, save the state; the kind sent."""
    seen = observe(conn, rule, healthy_s=healthy_s)
    kind = next_message(state, seen, now, config.remind_after(rule))
    status = "firing" if seen.firing else "ok"
    changed = state is None or state.status != status
    since = state.since if state is not None and not changed else now
    notified_at = state.notified_at if state and not changed else None
    if kind is not None:
        message_since = state.since if kind == "resolved" and state else since
        message = compose(kind, rule, seen, message_since, public_url, now)
        deliveries = send_to_channels(conn, config, rule, message, now, sender)
        # A firing message no channel took is sent again at the next evaluation.
        if any(d.delivered for d in deliveries) or not deliveries or kind != "firing":
            notified_at = now
        else:
            notified_at = None
    conn.execute(
        SAVE_STATE_SQL,
        {
            "rule": rule.name, "status": status, "since": since, "value": seen.value,
            "summary": seen.summary, "now": now, "notified_at": notified_at,
        },
    )  # fmt: skip
    return kind


def evaluate_alerts(
    conn: psycopg.Connection,
    config: AlertConfig,
    *,
    healthy_s: float,
    public_url: str | None,
    sender: Sender = deliver,
) -> EvaluationReport:
    """Every rule once, under the evaluator lock (skipped when another worker holds it).

    `conn` must be in autocommit mode: each rule's state is saved as soon as it is decided,
    so a message is never sent twice because a later rule failed."""
    report = EvaluationReport()
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (ALERTS_LOCK_KEY,)).fetchone()
    if not (row and row[0]):
        report.skipped = True
        return report
    try:
        now_row = conn.execute("SELECT now()").fetchone()
        assert now_row is not None
        now: datetime = now_row[0]
        states = {
            name: _State(status, since, notified)
            for name, status, since, notified in conn.execute(STATE_SQL).fetchall()
        }
        for rule in config.rules:
            try:
                kind = evaluate_rule(
                    conn, config, rule, states.get(rule.name), now,
                    healthy_s=healthy_s, public_url=public_url, sender=sender,
                )  # fmt: skip
            except psycopg.Error as exc:
                report.errors.append(rule.name)
                logger.warning("jobdash alerts: rule %r not evaluated: %s", rule.name, exc)
                continue
            report.evaluated += 1
            if kind:
                report.sent.append((rule.name, kind))
        conn.execute(PRUNE_SQL, {"days": DELIVERY_RETENTION_DAYS})
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (ALERTS_LOCK_KEY,))
    return report


def send_test_message(
    conn: psycopg.Connection,
    config: AlertConfig,
    rule: Rule,
    *,
    healthy_s: float,
    public_url: str | None,
    sender: Sender = deliver,
) -> list[Delivery]:
    """Evaluate `rule` now and send a test message to its channels (state unchanged)."""
    seen = observe(conn, rule, healthy_s=healthy_s)
    now_row = conn.execute("SELECT now()").fetchone()
    assert now_row is not None
    message = compose("test", rule, seen, None, public_url, now_row[0])
    return send_to_channels(conn, config, rule, message, now_row[0], sender)
