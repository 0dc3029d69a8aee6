"""Alert rules and notification channels, from TOML: JOBDASH_ALERTS (text) or JOBDASH_ALERTS_FILE.

```toml
[[channels]]
name = "ops-slack"
type = "slack"                      # slack (a `text` payload) | webhook (JSON) | email
url_env = "SLACK_WEBHOOK_URL"       # or url = "https://…" (a secret: prefer url_env)

[[channels]]
name = "ops-mail"
type = "email"
to = ["ops@example.com"]
from = "jobdash@example.com"
smtp_host = "smtp.example.com"      # smtp_port (587 with starttls, else 25), starttls,
username = "jobdash"                # ssl, password_env = "JOBDASH_SMTP_PASSWORD"
password_env = "JOBDASH_SMTP_PASSWORD"

[[rules]]
name = "billing failing"
kind = "failure_rate"               # of a queue and/or task, over `minutes`, at least `min_count`
queue = "billing"
above_percent = 20
minutes = 10
min_count = 5
```
Kinds: failure_rate, queue_latency (above_s, queue optional), no_healthy_worker (queue),
periodic_missed (task optional, grace_s), stalled_jobs (above, default 0), rollup_behind
(above_minutes, default 5). Every rule may name `channels` (default: all) and
`remind_after_minutes`. Anything wrong is a ConfigError of one line naming the rule or channel.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, TypedDict

from jobdash.core.errors import ConfigError
from jobdash.core.settings import OpsSettings

KINDS = {
    # kind: (allowed keys besides the common ones, required keys)
    "failure_rate": ({"queue", "task", "above_percent", "minutes", "min_count"}, {"above_percent"}),
    "queue_latency": ({"queue", "above_s"}, {"above_s"}),
    "no_healthy_worker": ({"queue"}, {"queue"}),
    "periodic_missed": ({"task", "grace_s"}, set()),
    "stalled_jobs": ({"above"}, set()),
    "rollup_behind": ({"above_minutes"}, set()),
}
COMMON_KEYS = {"name", "kind", "channels", "remind_after_minutes", "enabled"}
CHANNEL_TYPES = {"webhook", "slack", "email"}
CHANNEL_KEYS = {
    "webhook": {"url", "url_env", "headers"},
    "slack": {"url", "url_env"},
    "email": {
        "to", "from", "smtp_host", "smtp_port", "starttls", "ssl", "username", "password_env",
    },
}  # fmt: skip
CHANNEL_COMMON = {"name", "type", "timeout_s", "retries", "retry_wait_s"}


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    timeout_s: float = 5.0
    retries: int = 2  # after the first attempt
    retry_wait_s: float = 1.0  # doubled after each failed attempt
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    to: tuple[str, ...] = ()
    sender: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    queue: str | None = None
    task: str | None = None
    threshold: float = 0.0  # above_percent / above_s / above / above_minutes
    minutes: int = 10
    min_count: int = 10
    grace_s: float = 120.0
    channels: tuple[str, ...] = ()  # resolved: never empty when channels exist
    remind_after_s: float | None = None  # None: the default (JOBDASH_ALERT_REMIND_AFTER_S)

    def describe(self) -> str:
        """The condition in words, for the page and the messages."""
        parts = [
            f"queue {self.queue}" if self.queue else "",
            f"task {self.task}" if self.task else "",
        ]
        where = " ".join(part for part in parts if part) or "all queues"
        return {
            "failure_rate": f"failure rate of {where} above {self.threshold:g} % over "
            f"{self.minutes} min (at least {self.min_count} finished)",
            "queue_latency": f"oldest ready job of {where} waiting more than {self.threshold:g} s",
            "no_healthy_worker": f"no healthy worker listening on queue {self.queue}",
            "periodic_missed": f"a periodic run of {self.task or 'any task'} missed by more than "
            f"{self.grace_s:g} s",
            "stalled_jobs": f"more than {self.threshold:g} stalled jobs",
            "rollup_behind": f"history rollups more than {self.threshold:g} min behind",
        }[self.kind]


@dataclass(frozen=True)
class AlertConfig:
    rules: tuple[Rule, ...]
    channels: tuple[Channel, ...]
    remind_after_s: float
    source: str  # "JOBDASH_ALERTS" or the file's path, for messages

    def rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def channels_of(self, rule: Rule) -> list[Channel]:
        return [channel for channel in self.channels if channel.name in rule.channels]

    def remind_after(self, rule: Rule) -> float:
        return rule.remind_after_s if rule.remind_after_s is not None else self.remind_after_s


def _number(where: str, table: dict[str, Any], key: str, default: float | None = None) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: {key} must be a number ≥ 0, got {value!r}")
    return float(value)


def _text(where: str, table: dict[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value.strip() if isinstance(value, str) else None


def _unknown_keys(where: str, table: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _secret(where: str, table: dict[str, Any], key: str) -> str | None:
    """`key` itself, or the environment variable named by `key`_env."""
    direct, variable = _text(where, table, key), _text(where, table, f"{key}_env")
    if variable:
        value = os.environ.get(variable, "").strip()
        if not value:
            raise ConfigError(f"{where}: {key}_env names {variable}, which is not set")
        return value
    return direct


class _Delivery(TypedDict):
    """The settings every kind of channel has."""

    timeout_s: float
    retries: int
    retry_wait_s: float


def _named_table(table: Any, array: str, index: int) -> str:
    """The name of entry `index` of `array` ("channels", "rules"), which must be a table."""
    if not isinstance(table, dict):
        raise ConfigError(f"{array}[{index}] must be a table")
    name = _text(f"{array}[{index}]", table, "name")
    if not name:
        raise ConfigError(f"{array}[{index}]: name is required")
    return name


def parse_channel(table: Any, index: int) -> Channel:
    name = _named_table(table, "channels", index)
    where = f"channel {name!r}"
    kind = table.get("type")
    if kind not in CHANNEL_TYPES:
        raise ConfigError(f"{where}: type must be one of {', '.join(sorted(CHANNEL_TYPES))}")
    _unknown_keys(where, table, CHANNEL_COMMON | CHANNEL_KEYS[kind])
    common: _Delivery = {
        "timeout_s": _number(where, table, "timeout_s", 5),
        "retries": int(_number(where, table, "retries", 2)),
        "retry_wait_s": _number(where, table, "retry_wait_s", 1),
    }
    if kind in {"webhook", "slack"}:
        url = _secret(where, table, "url")
        if not url or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: url (or url_env) must be an http:// or https:// URL")
        headers = table.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ConfigError(f"{where}: headers must be a table of strings")
        return Channel(name, kind, url=url, headers=dict(headers), **common)
    to = table.get("to")
    if isinstance(to, str):
        to = [to]
    if not to or not all(isinstance(a, str) and "@" in a for a in to):
        raise ConfigError(f"{where}: to must be an address or a list of addresses")
    host, sender = _text(where, table, "smtp_host"), _text(where, table, "from")
    if not host or not sender:
        raise ConfigError(f"{where}: smtp_host and from are required")
    starttls, use_ssl = bool(table.get("starttls", False)), bool(table.get("ssl", False))
    default_port = 465 if use_ssl else 587 if starttls else 25
    return Channel(
        name,
        kind,
        to=tuple(to),
        sender=sender,
        smtp_host=host,
        smtp_port=int(_number(where, table, "smtp_port", default_port)),
        starttls=starttls,
        ssl=use_ssl,
        username=_text(where, table, "username"),
        password=_secret(where, table, "password"),
        **common,
    )


def parse_rule(table: Any, index: int, channel_names: list[str]) -> Rule | None:
    name = _named_table(table, "rules", index)
    where = f"rule {name!r}"
    kind = table.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    allowed, required = KINDS[kind]
    _unknown_keys(where, table, COMMON_KEYS | allowed)
    missing = sorted(required - set(table))
    if missing:
        raise ConfigError(f"{where}: {missing[0]} is required for kind {kind}")
    if table.get("enabled", True) is False:
        return None
    channels = table.get("channels", channel_names)
    if isinstance(channels, str):
        channels = [channels]
    unknown = [c for c in channels if c not in channel_names]
    if unknown:
        raise ConfigError(f"{where}: unknown channel {unknown[0]!r}")
    threshold_key = {
        "failure_rate": "above_percent", "queue_latency": "above_s", "stalled_jobs": "above",
        "rollup_behind": "above_minutes",
    }.get(kind)  # fmt: skip
    default_threshold = {"stalled_jobs": 0, "rollup_behind": 5}.get(kind, 0)
    remind = table.get("remind_after_minutes")
    return Rule(
        name=name,
        kind=kind,
        queue=_text(where, table, "queue"),
        task=_text(where, table, "task"),
        threshold=_number(where, table, threshold_key, default_threshold) if threshold_key else 0,
        minutes=max(1, int(_number(where, table, "minutes", 10))),
        min_count=int(_number(where, table, "min_count", 10)),
        grace_s=_number(where, table, "grace_s", 120),
        channels=tuple(channels),
        remind_after_s=_number(where, table, "remind_after_minutes") * 60 if remind else None,
    )


def parse_alert_config(text: str, source: str, remind_after_s: float) -> AlertConfig:
    """The rules and channels of TOML `text`; ConfigError (one line, prefixed by `source`)."""
    try:
        document = tomllib.loads(text)
        unknown = sorted(set(document) - {"rules", "channels"})
        if unknown:
            raise ConfigError(f"unknown top-level key {unknown[0]!r} (expected rules, channels)")
        channels = [parse_channel(t, i) for i, t in enumerate(document.get("channels", []))]
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ConfigError("two channels have the same name")
        rules = [parse_rule(t, i, names) for i, t in enumerate(document.get("rules", []))]
        enabled = [rule for rule in rules if rule is not None]
        rule_names = [rule.name for rule in enabled]
        if len(set(rule_names)) != len(rule_names):
            raise ConfigError("two rules have the same name")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return AlertConfig(tuple(enabled), tuple(channels), remind_after_s, source)


def load_alert_config(settings: OpsSettings) -> AlertConfig | None:
    """The configured alerts, or None when neither variable is set."""
    if settings.alerts and settings.alerts_file:
        raise ConfigError("set JOBDASH_ALERTS or JOBDASH_ALERTS_FILE, not both")
    if settings.alerts:
        return parse_alert_config(settings.alerts, "JOBDASH_ALERTS", settings.alert_remind_after_s)
    if settings.alerts_file:
        try:
            text = settings.alerts_file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"JOBDASH_ALERTS_FILE: cannot read {settings.alerts_file} ({exc})"
            ) from None
        return parse_alert_config(text, str(settings.alerts_file), settings.alert_remind_after_s)
    return None


def check_queues(config: AlertConfig, known_queues: set[str]) -> None:
    """ConfigError naming the first rule that refers to a queue nobody uses."""
    for rule in config.rules:
        if rule.queue and rule.queue not in known_queues:
            known = ", ".join(sorted(known_queues)) or "none yet"
            raise ConfigError(
                f"{config.source}: rule {rule.name!r}: unknown queue {rule.queue!r} "
                f"(known queues: {known})"
            )
