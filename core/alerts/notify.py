"""Sending one message to one channel: a webhook (generic JSON or Slack's `text`) or e-mail
(SMTP), with a timeout per attempt and retries with a doubling wait. Never raises: the outcome
(delivered, attempts, the last error in one line) is what the Alerts page shows."""

from __future__ import annotations

import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from jobdash.core.alerts.config import Channel
from jobdash.core.errors import one_line


@dataclass(frozen=True)
class Message:
    kind: str  # firing | reminder | resolved | test
    rule: str
    rule_kind: str
    subject: str
    text: str  # the whole message, plain text, links included
    summary: str
    value: float | None
    condition: str
    since: str | None  # ISO 8601 UTC
    url: str | None

    def payload(self) -> dict[str, object]:
        """The generic webhook's JSON body."""
        return {
            "status": self.kind,
            "rule": self.rule,
            "kind": self.rule_kind,
            "condition": self.condition,
            "summary": self.summary,
            "value": self.value,
            "since": self.since,
            "url": self.url,
            "text": self.text,
        }


@dataclass(frozen=True)
class Delivery:
    channel: str
    delivered: bool
    attempts: int
    error: str | None


def _post_json(channel: Channel, body: dict[str, object]) -> None:
    assert channel.url is not None
    request = urllib.request.Request(
        channel.url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "jobdash", **channel.headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=channel.timeout_s) as response:  # noqa: S310
            response.read(1024)
    except urllib.error.HTTPError as exc:
        # The URL (a Slack webhook's path is its secret) is never part of the message.
        raise RuntimeError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise RuntimeError(f"cannot reach the webhook: {exc.reason}") from None


def _send_email(channel: Channel, message: Message) -> None:
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = channel.sender
    email["To"] = ", ".join(channel.to)
    email.set_content(message.text)
    assert channel.smtp_host is not None
    smtp_class = smtplib.SMTP_SSL if channel.ssl else smtplib.SMTP
    with smtp_class(channel.smtp_host, channel.smtp_port or 25, timeout=channel.timeout_s) as smtp:
        if channel.starttls and not channel.ssl:
            smtp.starttls(context=ssl.create_default_context())
        if channel.username:
            smtp.login(channel.username, channel.password or "")
        smtp.send_message(email)


def send_once(channel: Channel, message: Message) -> None:
    """One attempt; raises on failure."""
    if channel.type == "email":
        _send_email(channel, message)
    elif channel.type == "slack":
        _post_json(channel, {"text": message.text})
    else:
        _post_json(channel, message.payload())


def deliver(
    channel: Channel, message: Message, sleep: Callable[[float], None] = time.sleep
) -> Delivery:
    """Up to 1 + channel.retries attempts, waiting retry_wait_s, then twice that, … between."""
    error = None
    wait = channel.retry_wait_s
    for attempt in range(1, channel.retries + 2):
        try:
            send_once(channel, message)
            return Delivery(channel.name, True, attempt, None)
        except Exception as exc:
            error = one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if attempt <= channel.retries:
            sleep(wait)
            wait *= 2
    return Delivery(channel.name, False, channel.retries + 1, error)
