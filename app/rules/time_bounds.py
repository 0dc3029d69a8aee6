"""Time-range bounds as a form shows them: a date, and a time of day that may be left empty.

A date alone means the whole day, in the zone the form speaks: from its start for a lower
bound ("failed since"), up to the next day's start for an upper one ("failed until"), the way
a date alone in the URL means the whole day. Pure functions, so the round trip is tested:
what the form shows for a bound gives that bound back.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo


def bound_from_form(
    day: date | None, clock: time | None, zone: tzinfo, *, upper: bool
) -> datetime | None:
    """The instant a (date, time) of the form means; None without a date."""
    if day is None:
        return None
    if clock is not None:
        return datetime.combine(day, clock, zone)
    return datetime.combine(day + timedelta(days=1) if upper else day, time(), zone)


def form_from_bound(
    value: datetime | None, zone: tzinfo, *, upper: bool
) -> tuple[date | None, time | None]:
    """What the form shows for a bound: a day's start (for an upper bound: the next day's)
    as that date alone, any other instant as its date and time in `zone`."""
    if value is None:
        return None, None
    local = value.astimezone(zone)
    if local.time() == time():
        return (local.date() - timedelta(days=1) if upper else local.date()), None
    return local.date(), local.time().replace(tzinfo=None)
