"""Schedules: what kind a cron is, in words, its ticks, and when a run counts as missed.

Procrastinate parses cron with croniter, in UTC; a 6th field holds the SECONDS (last, unlike
Quartz): "* * * * * */15" runs every 15 seconds.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from cron_descriptor import ExpressionDescriptor, Options
from croniter import croniter, croniter_range

PERIODIC_GRACE_S = 60.0
# A one-time job a worker has not taken this long after its time is late (a poll interval or
# two of a busy worker).
ONETIME_GRACE_S = 30.0
# Procrastinate's PeriodicDeferrer defers a tick at most this late (periodic_defaults max_delay);
# an older one is skipped, never run late.
PROCRASTINATE_MAX_DELAY_S = 600.0

_DESCRIPTOR_OPTIONS = Options()
_DESCRIPTOR_OPTIONS.use_24hour_time_format = True
_DESCRIPTOR_OPTIONS.verbose = False


# The range of each unit a `*/N` step may divide evenly.
_STEP_UNITS = {"second": 60, "minute": 60, "hour": 24}
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class CronFields:
    second: str
    minute: str
    hour: str
    day: str
    month: str
    weekday: str


def parse_cron_fields(cron: str) -> CronFields | None:
    """The fields of a 5- or 6-field cron (Procrastinate/croniter: seconds are the 6th field)."""
    text = _ALIASES.get(cron.strip().lower(), cron.strip())
    parts = text.split()
    if len(parts) == 5:
        parts.append("0")
    if len(parts) != 6:
        return None
    minute, hour, day, month, weekday, second = parts
    return CronFields(second, minute, hour, day, month, weekday)


def is_valid_cron(cron: str) -> bool:
    try:
        return bool(cron.strip()) and croniter.is_valid(cron)
    except Exception:  # croniter raises several types for odd input
        return False


def _fixed(field: str) -> bool:
    return field.isdigit()


def _step(field: str, unit_range: int) -> int | None:
    """N for `*` (1) or `*/N` when N divides the unit evenly, so runs are equally spaced."""
    if field == "*":
        return 1
    if field.startswith("*/") and field[2:].isdigit():
        n = int(field[2:])
        if 0 < n <= unit_range and unit_range % n == 0:
            return n
    return None


def interval_seconds(cron: str) -> int | None:
    """Seconds between runs when the cron is a fixed step, else None.

    Fixed step: the least significant non-fixed field is `*` or `*/N` (N dividing its unit) in
    seconds, minutes or hours; every field above it is `*`; every field below it a number.
    "*/5 * * * *" → 300, "* * * * * */15" → 15, "0 */2 * * *" → 7200, "0 3 * * *" → None.
    """
    fields = parse_cron_fields(cron)
    if fields is None:
        return None
    order = [
        ("second", fields.second, 1),
        ("minute", fields.minute, 60),
        ("hour", fields.hour, 3600),
    ]
    for index, (unit, value, seconds) in enumerate(order):
        if _fixed(value):
            continue
        step = _step(value, _STEP_UNITS[unit])
        above = [f for _, f, _ in order[index + 1 :]] + [fields.day, fields.month, fields.weekday]
        if step is None or any(f != "*" for f in above):
            return None
        return step * seconds
    return None


def schedule_type(cron: str | None) -> str:
    """ "onetime" (no cron), "interval" or "cron".

    Interval, as issue 3 defines it: a fixed step written as one `*/N` field with `*` above
    it ("*/5 * * * *", "0 */2 * * *"). "0 * * * *" is described as "every hour" but typed cron.
    """
    if cron is None:
        return "onetime"
    fields = parse_cron_fields(cron)
    has_step_field = fields is not None and any(
        value.startswith("*/") for value in (fields.second, fields.minute, fields.hour)
    )
    return "interval" if has_step_field and interval_seconds(cron) is not None else "cron"


@functools.lru_cache(maxsize=1024)
def describe_schedule(cron: str | None) -> str:
    """The schedule in words ("Every 5 minutes", "At 03:00, only on Monday"), by
    cron-descriptor. It reads a 6-field cron with the seconds FIRST (Quartz), Procrastinate's
    croniter with the seconds LAST: the fields are reordered before it reads them. Kept per
    text: describing costs about a millisecond, and every refresh asks again."""
    if cron is None:
        return "once"
    fields = parse_cron_fields(cron)
    if fields is None or not is_valid_cron(cron):
        return f"invalid cron: {cron}"
    has_seconds = len(cron.split()) == 6
    expression = " ".join(
        ([fields.second] if has_seconds else [])
        + [fields.minute, fields.hour, fields.day, fields.month, fields.weekday]
    )
    try:
        return str(ExpressionDescriptor(expression, _DESCRIPTOR_OPTIONS).get_description())
    except Exception:  # a cron croniter reads but the describer does not
        return f"cron: {cron.strip()}"


def ticks_in(cron: str, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """Run times in [start, end), at most `limit` of them (UTC, croniter's reading)."""
    ticks = croniter_range(start, end, cron, ret_type=datetime)
    return [tick for tick in itertools.islice(ticks, limit + 1) if tick < end][:limit]


def latest_tick(cron: str, now: datetime) -> datetime:
    """The latest run time at or before `now` (croniter's get_prev is strictly before)."""
    return croniter(cron, now + timedelta(microseconds=1)).get_prev(datetime)


def next_tick(cron: str, now: datetime) -> datetime:
    """The earliest run time strictly after `now`."""
    return croniter(cron, now).get_next(datetime)


def is_onetime_due(
    scheduled_at: datetime, read_at: datetime, grace_s: float = ONETIME_GRACE_S
) -> bool:
    """A one-time job is late when it was still waiting `grace_s` past its time when it was
    read: one that came due since (or a moment before) is most likely running already."""
    return (read_at - scheduled_at).total_seconds() > grace_s


def is_periodic_due(
    tick: datetime,
    last_deferred: datetime | None,
    now: datetime,
    grace_s: float = PERIODIC_GRACE_S,
    known_since: datetime | None = None,
) -> bool:
    """The latest tick at or before now is more than `grace_s` old and was never deferred:
    the run was missed (no worker running, or a broken deferrer). A tick from before the
    schedule was first published (`known_since`) was nobody's to run: not missed."""
    if (now - tick).total_seconds() <= grace_s:
        return False
    if known_since is not None and tick < known_since:
        return False
    return last_deferred is None or last_deferred < tick


def is_skipped_when_late(
    tick: datetime, now: datetime, max_delay_s: float = PROCRASTINATE_MAX_DELAY_S
) -> bool:
    """A missed tick a starting worker will not run: older than the deferrer's max_delay."""
    return (now - tick).total_seconds() > max_delay_s
