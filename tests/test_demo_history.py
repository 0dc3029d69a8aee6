"""`jobdash demo` makes up a day of history for its own database, marked as demo data, never
over real rows, and the rollup that runs next keeps it."""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from jobdash.app.cli import demo as demo_cli
from jobdash.app.read.history import load_history
from jobdash.jobs.demo.history import OUTAGE_MINUTES, make_up_minutes, seed_demo_history
from jobdash.jobs.maintenance.rollup import run_rollup

DAY = [datetime(2030, 1, 1, tzinfo=UTC) + timedelta(minutes=i) for i in range(24 * 60)]


def _count(buckets, minutes, column: int, task: str | None = None) -> int:
    keep = {int(m.timestamp() // 60) for m in minutes}
    return int(
        sum(
            row[column]
            for (minute, _queue, name), row in buckets.history.items()
            if minute in keep and (task is None or name == task)
        )
    )


def test_made_up_traffic_is_quiet_half_a_day_ago_and_has_an_outage():
    outage = datetime(2030, 1, 1, 16, 10, tzinfo=UTC)
    end = DAY[-1] + timedelta(minutes=1)
    buckets, jobs = make_up_minutes(
        DAY, random.Random(4), rate=2.5, outage_start=outage, peak_at=end
    )
    night = [m for m in DAY if 11 <= m.hour < 13]  # twelve hours before the end
    afternoon = [m for m in DAY if m.hour >= 22]  # the last two hours, as busy as the demo
    started = 0
    assert _count(buckets, night, started) < 0.6 * _count(buckets, afternoon, started)
    # The rate times the mean traffic share (0.7), plus bursts, periodic tasks, reminders.
    assert 0.75 * 2.5 * 86_400 < jobs < 0.9 * 2.5 * 86_400
    during = [outage + timedelta(minutes=i) for i in range(OUTAGE_MINUTES)]
    before = [outage - timedelta(minutes=i + 1) for i in range(OUTAGE_MINUTES)]
    retried = 3
    charge = "shop.charge_card"
    assert _count(buckets, during, retried, charge) > 4 * max(
        1, _count(buckets, before, retried, charge)
    )
    kinds = {kind for (_m, _q, _t, kind) in buckets.errors}
    assert {"jobdash.jobs.demo.app.PaymentDeclined", "builtins.ValueError"} <= kinds


def _minutes_with_rows(conn: psycopg.Connection, start: datetime, end: datetime) -> int:
    (n,) = conn.execute(
        "select count(distinct bucket) from jobdash_history_queue_minute"
        " where bucket >= %s and bucket < %s",
        (start, end),
    ).fetchone()
    return n


def test_a_day_is_seeded_marked_and_kept_by_the_next_rollup(conn):
    real_minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=90)
    conn.execute(
        "insert into jobdash_history_minute (bucket, queue_name, task_name, started, succeeded)"
        " values (%s, 'mine', 'my.task', 7, 7)",
        (real_minute,),
    )
    conn.execute(
        "insert into jobdash_history_queue_minute (bucket, queue_name, started, succeeded)"
        " values (%s, 'mine', 7, 7)",
        (real_minute,),
    )

    report = seed_demo_history(conn, seed=1)

    assert report.minutes == 24 * 60 - 1  # every minute but the real one
    assert report.end - report.start == timedelta(hours=24)
    assert _minutes_with_rows(conn, report.start, report.end) == 24 * 60
    # The real minute is as it was: nothing made up was added to it.
    assert conn.execute(
        "select queue_name, started from jobdash_history_queue_minute where bucket = %s",
        (real_minute,),
    ).fetchall() == [("mine", 7)]
    # Per-queue rows and hours agree with the per-task minutes (summed here independently).
    (task_total, queue_total, hour_total) = conn.execute(
        """
        select (select sum(started) from jobdash_history_minute),
               (select sum(started) from jobdash_history_queue_minute),
               (select sum(started) from jobdash_history_hour)
        """
    ).fetchone()
    assert task_total == queue_total == hour_total > 100_000
    (errors,) = conn.execute(
        "select sum(failures) from jobdash_error_groups_minute where task_name like 'shop.%%'"
    ).fetchone()
    (failed,) = conn.execute(
        "select sum(failed) from jobdash_history_minute where task_name like 'shop.%%'"
    ).fetchone()
    assert errors == failed > 0
    assert conn.execute("select seeded_until from jobdash_demo_history").fetchone() == (report.end,)

    history = load_history(conn, "24h")
    assert history.demo_until == report.end
    assert history.status.recording
    assert history.throughput["succeeded"].sum() > 100_000
    assert set(history.error_groups["task"]) >= {"shop.charge_card", "shop.build_report"}

    # The demo's worker then runs its first rollup: the made-up day stays (but for the
    # trailing minutes a rollup always recomputes).
    run_rollup(conn)
    kept_until = report.end - timedelta(minutes=3)
    assert _minutes_with_rows(conn, report.start, kept_until) == 24 * 60 - 3

    again = seed_demo_history(conn, seed=2)
    assert again.minutes <= 3  # only what the rollup emptied, never a second layer


def test_an_unseeded_database_has_no_demo_marker(conn):
    assert load_history(conn, "24h").demo_until is None


def _args(**options) -> argparse.Namespace:
    defaults = {"database_url": None, "seed_history": False, "no_seed_history": False}
    return argparse.Namespace(rate=2.5, **{**defaults, **options})


@pytest.mark.parametrize(
    ("options", "seeded"),
    [
        ({"database_url": "given"}, False),  # a database given by URL: only when asked
        ({"database_url": "given", "seed_history": True}, True),
        ({}, True),  # the demo's own embedded database
        ({"no_seed_history": True}, False),
    ],
)
def test_demo_seeds_only_its_own_database_unless_asked(
    options, seeded, database_url, monkeypatch, capsys
):
    monkeypatch.delenv("JOBDASH_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    demo_cli.seed_history(database_url, _args(**options))
    with psycopg.connect(database_url, autocommit=True) as conn:
        (marked,) = conn.execute(
            "select to_regclass('jobdash_demo_history') is not null"
        ).fetchone()
    assert marked is seeded
    assert ("made up" in capsys.readouterr().out) is seeded
