"""Pure rules: health, relative time, schedule type and words, due-ness, payload previews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobdash.app.rules import health, schedules
from jobdash.app.rules import text as words

NOW = datetime(2024, 5, 6, 12, 0, 0, tzinfo=UTC)


def later(**kw: float) -> datetime:
    return NOW + timedelta(**kw)


class TestHealth:
    def test_recent_heartbeat_and_normal_cpu_is_healthy(self) -> None:
        assert health.is_worker_healthy(5, 40.0)

    def test_61_minute_old_heartbeat_is_unhealthy(self) -> None:
        # timedelta(minutes=61).seconds would be 3660 but a 1-day-61-min gap .seconds is small:
        # the rule takes total seconds.
        assert not health.is_worker_healthy(timedelta(minutes=61).total_seconds(), 10.0)
        assert not health.is_worker_healthy(timedelta(days=1, seconds=5).total_seconds(), None)

    def test_threshold_is_exclusive(self) -> None:
        assert health.is_worker_healthy(119.9, None, 120)
        assert not health.is_worker_healthy(120, None, 120)
        assert health.is_worker_healthy(200, None, 300)

    def test_cpu_at_or_above_95_is_unhealthy_unknown_is_not(self) -> None:
        assert not health.is_worker_healthy(1, 95.0)
        assert health.is_worker_healthy(1, 94.9)
        assert health.is_worker_healthy(1, None)


class TestRelativeTime:
    @pytest.mark.parametrize(
        ("delta", "text"),
        [
            (timedelta(0), "in less than 1 minute"),
            (timedelta(seconds=59.9), "in less than 1 minute"),
            (timedelta(seconds=60), "in 1 min"),
            (timedelta(minutes=7, seconds=59), "in 7 min"),
            (timedelta(minutes=59, seconds=59), "in 59 min"),
            (timedelta(hours=1), "in 1 hour"),
            (timedelta(hours=5, minutes=30), "in 5 hours, 30 min"),
            (timedelta(hours=23, minutes=59), "in 23 hours, 59 min"),
            (timedelta(days=1), "in 1 day"),
            (timedelta(days=2, hours=3, minutes=10), "in 2 days, 3 hours"),
            (timedelta(days=1, hours=1), "in 1 day, 1 hour"),
        ],
    )
    def test_future(self, delta: timedelta, text: str) -> None:
        assert words.relative_time(NOW + delta, NOW) == text

    @pytest.mark.parametrize(
        ("delta", "text"),
        [
            (timedelta(microseconds=1), "overdue by less than 1 minute"),
            (timedelta(minutes=3, seconds=10), "overdue by 3 min"),
            (timedelta(hours=2, minutes=5), "overdue by 2 hours, 5 min"),
            (timedelta(days=3, hours=4), "overdue by 3 days, 4 hours"),
        ],
    )
    def test_past_is_never_in(self, delta: timedelta, text: str) -> None:
        assert words.relative_time(NOW - delta, NOW) == text


class TestScheduleType:
    @pytest.mark.parametrize(
        ("cron", "kind", "seconds"),
        [
            ("*/5 * * * *", "interval", 300),
            ("* * * * * */15", "interval", 15),
            ("0 */2 * * *", "interval", 7200),
            ("0 * * * *", "cron", 3600),  # a fixed step, but no `*/N` field: typed cron
            ("* * * * *", "cron", 60),
            ("0 3 * * *", "cron", None),
            ("*/7 * * * *", "cron", None),  # 56 → 0 is a 4-minute gap: not a fixed step
            ("*/5 9-17 * * *", "cron", None),
            ("*/5 * * * * *", "cron", None),  # every second in minutes divisible by 5
            ("0 0 */2 * *", "cron", None),  # months have different lengths
            ("* */2 * * *", "cron", None),
        ],
    )
    def test_type_and_step(self, cron: str, kind: str, seconds: int | None) -> None:
        # `seconds` (the fixed step, used for the description in words) may exist for a cron
        # that is still typed "cron": the type follows issue 3's `*/N` definition.
        assert schedules.schedule_type(cron) == kind
        assert schedules.interval_seconds(cron) == seconds

    def test_no_cron_is_onetime(self) -> None:
        assert schedules.schedule_type(None) == "onetime"

    @pytest.mark.parametrize(
        ("cron", "words"),
        [
            ("*/5 * * * *", "Every 5 minutes"),
            # croniter's seconds are the LAST field; cron-descriptor's the first.
            ("* * * * * */15", "Every 15 seconds"),
            ("*/5 * * * * *", "Every second, every 5 minutes"),
            ("30 4 * * 1 10", "At 04:30:10, only on Monday"),
            ("* * * * *", "Every minute"),
            ("0 */2 * * *", "Every 2 hours"),
            ("15 * * * *", "At 15 minutes past the hour"),
            ("0 3 * * *", "At 03:00"),
            ("30 8 * * 1-5", "At 08:30, Monday through Friday"),
            ("0 9 * * 1,3", "At 09:00, only on Monday and Wednesday"),
            ("0 0 1 * *", "At 00:00, on day 1 of the month"),
            ("0 0 25 12 *", "At 00:00, on day 25 of the month, only in December"),
            ("@daily", "At 00:00"),
            ("*/5 9-17 * * *", "Every 5 minutes, between 09:00 and 17:59"),
            ("not a cron", "invalid cron: not a cron"),
        ],
    )
    def test_description(self, cron: str, words: str) -> None:
        assert schedules.describe_schedule(cron) == words


class TestTicks:
    def test_latest_tick_includes_now(self) -> None:
        assert schedules.latest_tick("*/5 * * * *", NOW) == NOW
        assert schedules.latest_tick("*/5 * * * *", later(minutes=4)) == NOW

    def test_next_tick_is_strictly_after(self) -> None:
        assert schedules.next_tick("*/5 * * * *", NOW) == later(minutes=5)
        assert schedules.next_tick("* * * * * */15", NOW) == later(seconds=15)

    def test_ticks_in_a_window(self) -> None:
        runs = schedules.ticks_in("*/30 * * * *", NOW, later(hours=2), limit=100)
        assert runs == [later(minutes=30 * i) for i in range(4)]  # start included, end not
        assert len(schedules.ticks_in("* * * * * */1", NOW, later(hours=1), limit=10)) == 10
        assert schedules.ticks_in("* * * * * */15", NOW, later(minutes=1), limit=10) == [
            later(seconds=15 * i) for i in range(4)
        ]


class TestDue:
    def test_onetime(self) -> None:
        assert schedules.is_onetime_due(later(seconds=-31), NOW)
        assert not schedules.is_onetime_due(later(seconds=-29), NOW)  # most likely running
        assert not schedules.is_onetime_due(NOW, NOW)
        assert not schedules.is_onetime_due(later(seconds=1), NOW)

    def test_periodic_missed_tick_more_than_60s_old(self) -> None:
        tick = later(seconds=-61)
        assert schedules.is_periodic_due(tick, None, NOW)
        assert schedules.is_periodic_due(tick, later(minutes=-10), NOW)

    def test_periodic_within_grace_is_not_due(self) -> None:
        assert not schedules.is_periodic_due(later(seconds=-60), None, NOW)
        assert not schedules.is_periodic_due(NOW, None, NOW)

    def test_periodic_deferred_tick_is_not_due(self) -> None:
        tick = later(minutes=-30)
        assert not schedules.is_periodic_due(tick, tick, NOW)

    def test_tick_before_the_schedule_was_first_published_is_not_missed(self) -> None:
        tick = later(hours=-19)
        assert not schedules.is_periodic_due(tick, None, NOW, known_since=later(minutes=-5))
        assert schedules.is_periodic_due(tick, None, NOW, known_since=later(hours=-20))


class TestPayloadPreview:
    def test_compact_json_uncut(self) -> None:
        assert words.payload_preview({"a": 1, "b": [1, 2]}) == '{"a":1,"b":[1,2]}'
        assert words.payload_preview({}) == "{}"

    def test_exactly_100_is_not_cut(self) -> None:
        args = {"k": "x" * (100 - len('{"k":""}'))}
        preview = words.payload_preview(args)
        assert len(preview) == 100 and not preview.endswith("…")

    def test_101_is_cut_to_100_with_ellipsis(self) -> None:
        args = {"k": "x" * (101 - len('{"k":""}'))}
        preview = words.payload_preview(args)
        assert len(preview) == 100
        assert preview.endswith("x…")

    def test_unicode_is_kept_and_cut_by_character(self) -> None:
        preview = words.payload_preview({"t": "日本語" * 50})
        assert preview.startswith('{"t":"日本語')
        assert len(preview) == 100 and preview.endswith("…")
        preview.encode("utf-8")  # no lone surrogates

    def test_does_not_split_a_flag_or_zwj_sequence(self) -> None:
        flag = "\U0001f1e9\U0001f1ea"  # 🇩🇪: two code points
        text = "a" * 98 + flag + "tail"  # a cut at 99 would leave half a flag
        assert words.cut_text(text) == "a" * 98 + "…"
        family = "\U0001f469\u200d\U0001f4bb"  # 👩‍💻
        text = "b" * 97 + family + "tail"
        cut = words.cut_text(text)
        assert cut == "b" * 97 + "…"

    def test_does_not_split_combining_mark(self) -> None:
        text = "c" * 98 + "e\u0301" + "rest"
        assert words.cut_text(text) == "c" * 98 + "…"

    def test_hostile_strings_stay_plain_text(self) -> None:
        preview = words.payload_preview({"x": "<script>alert(1)</script>"})
        assert preview == '{"x":"<script>alert(1)</script>"}'
