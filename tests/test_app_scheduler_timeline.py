"""Pure parts of the scheduler panel: cron occurrences for the timeline, due-first order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobdash.app.read.models import UpcomingTask
from jobdash.app.rules.schedules import ticks_in
from jobdash.app.ui.panels.scheduler import (
    due_first,
    schedule_text,
    timeline_points,
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


def test_timeline_repeats_periodic_tasks_and_places_one_time_jobs_once() -> None:
    upcoming = [
        task("every_hour", "cron", "0 * * * *", datetime(2024, 5, 1, 13, tzinfo=UTC)),
        task("once", "onetime", None, NOW + timedelta(minutes=30)),
        task("far", "onetime", None, NOW + timedelta(days=2)),
    ]
    points = timeline_points(upcoming, NOW, hours=6)
    hourly = [p.run_at.hour for p in points if p.task == "every_hour"]
    assert hourly == [13, 14, 15, 16, 17, 18]
    assert [p.run_at for p in points if p.task == "once"] == [NOW + timedelta(minutes=30)]
    assert not [p for p in points if p.task == "far"]


def test_timeline_draws_due_tasks_at_now_and_caps_marks() -> None:
    upcoming = [
        task("late", "onetime", None, NOW - timedelta(minutes=5), due=True),
        task("missed", "cron", "0 3 * * *", NOW - timedelta(hours=9), due=True),
        task("busy", "interval", "* * * * * *", NOW + timedelta(seconds=1)),
    ]
    points = timeline_points(upcoming, NOW, hours=6, max_per_task=50)
    late = [p for p in points if p.task == "late"]
    assert len(late) == 1 and late[0].is_due and late[0].run_at == NOW
    assert [p.is_due for p in points if p.task == "missed"] == [True]  # next 03:00 is > 6 h away
    assert len([p for p in points if p.task == "busy"]) == 50


def test_unparseable_cron_falls_back_to_next_run() -> None:
    upcoming = [task("odd", "cron", "not a cron", NOW + timedelta(minutes=1))]
    assert [p.run_at for p in timeline_points(upcoming, NOW)] == [NOW + timedelta(minutes=1)]


def test_due_tasks_come_first_and_are_marked() -> None:
    upcoming = [
        task("soon", "cron", "*/5 * * * *", NOW + timedelta(minutes=1)),
        task("late2", "onetime", None, NOW - timedelta(minutes=1), due=True),
        task("late1", "onetime", None, NOW - timedelta(minutes=9), due=True),
    ]
    assert [t.task for t in due_first(upcoming)] == ["late1", "late2", "soon"]
    frame = upcoming_table(upcoming)
    assert list(frame["Task"]) == ["late1", "late2", "soon"]
    assert list(frame["Status"]) == ["⚠ DUE", "⚠ DUE", ""]


def test_schedule_text_combines_words_and_cron() -> None:
    assert schedule_text(
        task("a", "interval", "*/5 * * * *", NOW, description="every 5 minutes")
    ) == ("every 5 minutes (*/5 * * * *)")
    assert schedule_text(task("b", "onetime", None, NOW, description="one-time")) == "one-time"
