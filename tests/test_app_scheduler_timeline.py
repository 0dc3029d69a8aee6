"""Pure parts of the scheduler panel: cron occurrences for the timeline, due-first order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobdash.app.read.models import UpcomingTask
from jobdash.app.rules.schedules import ticks_in
from jobdash.app.ui.panels.scheduler import (
    build_timeline,
    due_first,
    schedule_text,
    upcoming_table,
)

NOW = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)


def task(
    name: str,
    kind: str,
    cron: str | None,
    next_run: datetime,
    *,
    due: bool = False,
    description: str = "",
) -> UpcomingTask:
    return UpcomingTask(
        id=name,
        task=name,
        schedule_type=kind,
        schedule=cron,
        schedule_description=description or (cron or "one-time"),
        next_run=next_run,
        next_run_relative="?",
        is_due=due,
        last_run=None,
        queue="default",
    )


def test_next_occurrences_includes_start_and_excludes_end() -> None:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    ticks = ticks_in("*/15 * * * *", start, start + timedelta(hours=1), 100)
    assert ticks == [start + timedelta(minutes=m) for m in (0, 15, 30, 45)]
    assert all(t.tzinfo is not None for t in ticks)


def test_next_occurrences_seconds_field_is_last_and_limit_applies() -> None:
    ticks = ticks_in("* * * * * */10", NOW, NOW + timedelta(hours=1), 5)
    assert ticks == [NOW + timedelta(seconds=s) for s in (0, 10, 20, 30, 40)]


def test_every_periodic_task_is_drawn_across_the_whole_window() -> None:
    hourly = task("every_hour", "cron", "0 * * * *", datetime(2024, 5, 1, 13, tzinfo=UTC))
    once = task("once", "onetime", None, NOW + timedelta(minutes=30))
    far = task("far", "onetime", None, NOW + timedelta(days=2))
    timeline = build_timeline([hourly], [once, far], NOW, hours=6)
    assert [t["at"].hour for t in timeline.ticks if t["task"] == "every_hour"] == [
        13, 14, 15, 16, 17, 18,
    ]  # fmt: skip
    assert [t["at"] for t in timeline.ticks if t["task"] == "once"] == [NOW + timedelta(minutes=30)]
    assert not [t for t in timeline.ticks if t["task"] == "far"]
    assert timeline.rows == ["once", "every_hour", "far"]  # by next run; every row labelled


def test_dense_schedules_are_one_band_with_their_rate() -> None:
    every_second = task("busy", "interval", "* * * * * */15", NOW + timedelta(seconds=15))
    every_minute = task("minutely", "interval", "* * * * *", NOW + timedelta(seconds=30))
    timeline = build_timeline([every_second, every_minute], [], NOW, hours=6)
    assert not timeline.ticks
    bands = {b["task"]: b for b in timeline.bands}
    assert bands["busy"]["rate"] == "every 15 s" and bands["minutely"]["rate"] == "every 1 min"
    assert all(b["start"] == NOW and b["end"] == NOW + timedelta(hours=6) for b in bands.values())


def test_due_tasks_are_marked_at_now_with_how_late() -> None:
    late = task("late", "onetime", None, NOW - timedelta(minutes=5), due=True)
    missed = task("missed", "cron", "0 3 * * *", NOW - timedelta(hours=9), due=True)
    timeline = build_timeline([missed], [late], NOW, hours=6)
    assert [(d["task"], d["at"]) for d in timeline.due] == [("missed", NOW), ("late", NOW)]
    assert timeline.due[1]["late"] == "late by 5 min"
    assert timeline.rows[:2] == ["missed", "late"]  # due first


def test_due_tasks_come_first_and_are_marked() -> None:
    upcoming = [
        task("soon", "cron", "*/5 * * * *", NOW + timedelta(minutes=1)),
        task("late2", "onetime", None, NOW - timedelta(minutes=1), due=True),
        task("late1", "onetime", None, NOW - timedelta(minutes=9), due=True),
    ]
    assert [t.task for t in due_first(upcoming)] == ["late1", "late2", "soon"]
    frame = upcoming_table(upcoming, NOW, UTC)
    assert list(frame["Task"]) == ["late1 (#late1)", "late2 (#late2)", "soon"]
    assert list(frame["Status"]) == ["⚠ late", "⚠ late", ""]
    assert list(frame["Last run"]) == ["never", "never", "never"]


def test_schedule_text_combines_words_and_cron() -> None:
    assert schedule_text(
        task("a", "interval", "*/5 * * * *", NOW, description="every 5 minutes")
    ) == ("every 5 minutes (*/5 * * * *)")
    assert schedule_text(task("b", "onetime", None, NOW, description="one-time")) == "one-time"
