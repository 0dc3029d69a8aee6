"""Pure rules of the dashboard: no database, no Streamlit, unit-tested directly."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter

CPU_UNHEALTHY_PERCENT = 95.0
PERIODIC_GRACE_S = 60.0
PAYLOAD_PREVIEW_CHARS = 100
ELLIPSIS = "…"


# Worker health


def is_worker_healthy(
    heartbeat_age_s: float, cpu_percent: float | None, threshold_s: float = 120
) -> bool:
    """Heartbeat younger than the threshold (in total seconds) and CPU below 95 %.

    Unknown CPU (a worker that was not instrumented) does not make a worker unhealthy.
    """
    if heartbeat_age_s >= threshold_s:
        return False
    return cpu_percent is None or cpu_percent < CPU_UNHEALTHY_PERCENT


# Relative time


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _span(seconds: float) -> str:
    """Magnitude in words: "less than 1 minute", "7 min", "5 hours, 30 min", "2 days, 3 hours"."""
    total = int(seconds)
    if total < 60:
        return "less than 1 minute"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _plural(hours, "hour") + (f", {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return _plural(days, "day") + (f", {_plural(hours, 'hour')}" if hours else "")


def relative_time(when: datetime, now: datetime) -> str:
    """"in 7 min" for the future (and for exactly now), "overdue by 3 min" for the past."""
    delta = (when - now).total_seconds()
    if delta < 0:
        return f"overdue by {_span(-delta)}"
    return f"in {_span(delta)}"


# Payload preview


def _breaks_cluster(text: str, cut: int) -> bool:
    """True when cutting `text` before index `cut` would split a visible character."""
    if cut <= 0 or cut >= len(text):
        return False
    nxt, prev = text[cut], text[cut - 1]
    if unicodedata.combining(nxt) or nxt in "\u200d\ufe0f\ufe0e" or prev == "\u200d":
        return True
    if 0xE0020 <= ord(nxt) <= 0xE007F:  # emoji tag sequence (subdivision flags)
        return True
    if _is_regional_indicator(nxt) and _is_regional_indicator(prev):
        # Flags are pairs of regional indicators: count the run before the cut.
        run = 0
        while cut - 1 - run >= 0 and _is_regional_indicator(text[cut - 1 - run]):
            run += 1
        return run % 2 == 1
    return False


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def cut_text(text: str, limit: int = PAYLOAD_PREVIEW_CHARS) -> str:
    """At most `limit` characters; when cut, ends in "…" and never splits a visible character."""
    if len(text) <= limit:
        return text
    cut = limit - len(ELLIPSIS)
    while cut > 0 and _breaks_cluster(text, cut):
        cut -= 1
    return text[:cut] + ELLIPSIS


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def payload_preview(args: Any, limit: int = PAYLOAD_PREVIEW_CHARS) -> str:
    """The job's args as compact JSON, cut to `limit` characters."""
    return cut_text(compact_json(args), limit)


# Schedules

# Index of a field in a 6-field cron once normalised to seconds-first order, and its range.
_STEP_UNITS = {"second": 60, "minute": 60, "hour": 24}
_DAY_NAMES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_MONTH_NAMES = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
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
    """"onetime" (no cron), "interval" or "cron".

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


def _every(seconds: int) -> str:
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            n = seconds // size
            return f"every {unit}" if n == 1 else f"every {n} {unit}s"
    return f"every {seconds} seconds"  # pragma: no cover - every int divides by 1


def _weekday_words(field: str) -> str | None:
    names = {str(i): name for i, name in enumerate(_DAY_NAMES)} | {"7": "Sunday"}
    short = {name[:3].lower(): name for name in _DAY_NAMES}

    def name_of(token: str) -> str | None:
        return names.get(token) or short.get(token.lower())

    if "-" in field and "," not in field:
        start, _, end = field.partition("-")
        a, b = name_of(start), name_of(end)
        return f"{a} to {b}" if a and b else None
    days = [name_of(token) for token in field.split(",")]
    if not all(days):
        return None
    return ", ".join(d for d in days if d)


def describe_schedule(cron: str | None) -> str:
    """The schedule in words, e.g. "every 5 minutes", "at 03:00 every day"; a fallback
    that quotes the cron text when the pattern is not a common one."""
    if cron is None:
        return "once"
    fields = parse_cron_fields(cron)
    if fields is None or not is_valid_cron(cron):
        return f"invalid cron: {cron}"
    step = interval_seconds(cron)
    if step is not None:
        words = _every(step)
        if step >= 3600 and (fields.minute != "0" or fields.second != "0"):
            words += f" at minute {int(fields.minute)}"
        elif 60 <= step < 3600 and fields.second != "0":
            words += f" at second {int(fields.second)}"
        return words
    if _fixed(fields.minute) and _fixed(fields.hour) and _fixed(fields.second):
        time = f"{int(fields.hour):02d}:{int(fields.minute):02d}"
        if int(fields.second):
            time += f":{int(fields.second):02d}"
        days = _days_words(fields)
        if days is not None:
            return f"at {time} {days}"
    return f"cron: {cron.strip()}"


def _days_words(fields: CronFields) -> str | None:
    day, month, weekday = fields.day, fields.month, fields.weekday
    if day == "*" and month == "*" and weekday == "*":
        return "every day"
    if day == "*" and month == "*":
        names = _weekday_words(weekday)
        return f"on {names}" if names else None
    if _fixed(day) and weekday == "*":
        if month == "*":
            return f"on day {int(day)} of every month"
        if _fixed(month) and 1 <= int(month) <= 12:
            return f"on {_MONTH_NAMES[int(month) - 1]} {int(day)}"
    return None


def latest_tick(cron: str, now: datetime) -> datetime:
    """The latest run time at or before `now` (croniter's get_prev is strictly before)."""
    return croniter(cron, now + timedelta(microseconds=1)).get_prev(datetime)


def next_tick(cron: str, now: datetime) -> datetime:
    """The earliest run time strictly after `now`."""
    return croniter(cron, now).get_next(datetime)


def ticks_between(cron: str, start: datetime, end: datetime, limit: int = 500) -> list[datetime]:
    """Run times in (start, end], at most `limit` of them (for the timeline chart)."""
    runs: list[datetime] = []
    it = croniter(cron, start)
    while len(runs) < limit:
        run = it.get_next(datetime)
        if run > end:
            break
        runs.append(run)
    return runs


def is_onetime_due(scheduled_at: datetime, now: datetime) -> bool:
    """A one-time job still in todo is due once its scheduled time is reached."""
    return scheduled_at <= now


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
