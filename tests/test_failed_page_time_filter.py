"""The failed-jobs page's time filters take a date and a time; a date alone is the whole day
("failed until today" includes today's failures), in the display time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobdash.app.rules.time_bounds import bound_from_form, form_from_bound
from tests.actions_helpers import make_failed_jobs
from tests.test_failed_page import page_env as page_env  # noqa: F401 (fixture)
from tests.test_failed_page import run_page

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("day", "clock", "zone", "upper", "expected"),
    [
        (date(2026, 5, 1), None, UTC, False, datetime(2026, 5, 1, tzinfo=UTC)),
        (date(2026, 5, 1), None, UTC, True, datetime(2026, 5, 2, tzinfo=UTC)),
        (date(2026, 5, 1), time(9, 30), UTC, True, datetime(2026, 5, 1, 9, 30, tzinfo=UTC)),
        # Berlin is UTC+2 in May: its 1 May starts at 30 April 22:00 UTC.
        (date(2026, 5, 1), None, BERLIN, False, datetime(2026, 4, 30, 22, tzinfo=UTC)),
        (date(2026, 5, 1), None, BERLIN, True, datetime(2026, 5, 1, 22, tzinfo=UTC)),
        (date(2026, 5, 1), time(9, 30), BERLIN, False, datetime(2026, 5, 1, 7, 30, tzinfo=UTC)),
        (None, time(9, 30), UTC, False, None),
    ],
)
def test_form_values_mean_these_instants(day, clock, zone, upper, expected):
    assert bound_from_form(day, clock, zone, upper=upper) == expected
    if expected is not None:  # and the form shows them back as they were entered
        assert form_from_bound(expected, zone, upper=upper) == (day, clock)


def _form_dates(at):
    return {d.label: d.value for d in at.date_input}, {t.label: t.value for t in at.time_input}


def test_a_date_alone_in_the_url_is_shown_as_that_day(page_env):  # noqa: F811
    at = run_page({"failed_until": "2026-05-01", "failed_since": "2026-04-28"})
    assert not at.exception
    days, times = _form_dates(at)
    assert days == {"Failed since": date(2026, 4, 28), "Failed until": date(2026, 5, 1)}
    assert set(times.values()) == {None}


def test_failed_until_today_includes_todays_failures(page_env, conn):  # noqa: F811
    make_failed_jobs(conn, 3)
    at = run_page()
    today = datetime.now(UTC).date()
    next(d for d in at.date_input if d.label == "Failed until").set_value(today)
    next(b for b in at.button if b.label == "Apply filters").click()
    at.run()
    assert not at.exception
    expected = datetime.combine(today + timedelta(days=1), time(), UTC)
    assert at.query_params["failed_until"] == expected.isoformat()
    assert any("3 failed jobs match the filter" in t.value for t in at.text)

    # A time narrows it: before a minute ago, none of them (they failed just now).
    a_minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).time().replace(microsecond=0)
    if a_minute_ago > time(0, 1):  # not across midnight
        next(t for t in at.time_input if t.label.startswith("before")).set_value(a_minute_ago)
        next(b for b in at.button if b.label == "Apply filters").click()
        at.run()
        assert any("0 failed jobs match the filter" in t.value for t in at.text)
