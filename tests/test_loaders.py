"""Loaders against real PostgreSQL, with crafted data for every field of issue 3."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import psycopg
import pytest
from procrastinate import App
from procrastinate.testing import InMemoryConnector

from jobdash.app.read.dashboard import (
    load_failed_jobs,
    load_queue_stats,
    load_scheduler,
    load_snapshot,
    load_worker_health,
)
from jobdash.app.read.models import to_jsonable
from jobdash.app.rules.schedules import latest_tick
from jobdash.core.periodic import PeriodicDefinition, periodic_definitions
from tests.hostile import HOSTILE
from tests.loader_helpers import (
    add_worker,
    db_now,
    defer,
    finish_in_past,
    record_error,
    set_event_age,
    set_status,
)


class TestQueueStats:
    def test_empty_database(self, conn: psycopg.Connection) -> None:
        stats = load_queue_stats(conn)
        assert stats.current_queue_size == 0
        assert (stats.successful_jobs, stats.failed_jobs, stats.total_jobs) == (0, 0, 0)
        assert stats.success_rate is None and stats.avg_execution_time_ms is None
        assert stats.queues == [] and stats.window_seconds == 3600

    def test_per_queue_counts_and_latency(self, conn: psycopg.Connection) -> None:
        now = db_now(conn)
        old_ready = defer(conn, queue="a")
        set_event_age(conn, old_ready, "deferred", 600)
        defer(conn, queue="a", scheduled_at=now - timedelta(minutes=1))  # ready: time reached
        defer(conn, queue="a", scheduled_at=now + timedelta(hours=1))  # scheduled
        doing = defer(conn, queue="a")
        set_status(conn, doing, "doing")
        failed = defer(conn, queue="b")
        set_status(conn, failed, "doing")
        set_status(conn, failed, "failed")
        done = defer(conn, queue="c")
        set_status(conn, done, "doing")
        set_status(conn, done, "succeeded")

        stats = load_queue_stats(conn)
        rows = {q.name: q for q in stats.queues}
        assert list(rows) == ["a", "b", "c"]
        a, b, c = rows["a"], rows["b"], rows["c"]
        assert (a.ready, a.scheduled, a.doing, a.failed) == (2, 1, 1, 0)
        assert a.oldest_ready_age_s is not None and 600 <= a.oldest_ready_age_s < 660
        assert (b.ready, b.scheduled, b.doing, b.failed) == (0, 0, 0, 1)
        assert b.oldest_ready_age_s is None
        # A queue with only finished jobs is still listed (present in the jobs table).
        assert (c.ready, c.scheduled, c.doing, c.failed, c.oldest_ready_age_s) == (
            0, 0, 0, 0, None,
        )  # fmt: skip
        assert stats.current_queue_size == 2

    def test_window_counts_rate_and_average(self, conn: psycopg.Connection) -> None:
        ok1, ok2, bad, old = (defer(conn) for _ in range(4))
        finish_in_past(conn, ok1, "succeeded", started_ago_s=600, finished_ago_s=599)  # 1000 ms
        finish_in_past(conn, ok2, "succeeded", started_ago_s=303, finished_ago_s=300)  # 3000 ms
        finish_in_past(conn, bad, "failed", started_ago_s=102, finished_ago_s=100)  # 2000 ms
        finish_in_past(conn, old, "succeeded", started_ago_s=7300, finished_ago_s=7200)

        stats = load_queue_stats(conn)
        assert (stats.successful_jobs, stats.failed_jobs, stats.total_jobs) == (2, 1, 3)
        assert stats.success_rate == pytest.approx(200 / 3)
        assert stats.avg_execution_time_ms == pytest.approx(2000, abs=1)

        wide = load_queue_stats(conn, window_seconds=3 * 3600)
        assert (wide.successful_jobs, wide.total_jobs, wide.window_seconds) == (3, 4, 10800)
        assert wide.avg_execution_time_ms == pytest.approx((1000 + 3000 + 2000 + 100_000) / 4)

        narrow = load_queue_stats(conn, window_seconds=200)
        assert (narrow.successful_jobs, narrow.failed_jobs) == (0, 1)
        assert narrow.success_rate == 0

    def test_duration_is_per_attempt_from_its_own_start(self, conn: psycopg.Connection) -> None:
        # The same definition as the History page: each attempt that ended (retried, failed,
        # succeeded, aborted) lasted from its own latest start.
        job = defer(conn)
        set_status(conn, job, "doing")
        set_event_age(conn, job, "started", 50)  # the first attempt started 50 s ago
        set_status(conn, job, "todo")  # deferred_for_retry: that attempt ran ~50 s
        set_status(conn, job, "doing")  # the latest start: now
        set_status(conn, job, "succeeded")  # ~0 s
        stats = load_queue_stats(conn)
        assert stats.successful_jobs == 1
        assert stats.avg_execution_time_ms is not None
        assert 20_000 < stats.avg_execution_time_ms < 30_000

    def test_each_final_failure_counts(self, conn: psycopg.Connection) -> None:
        # As the History page counts them: a job failed, retried by hand, failed again, is
        # two failures in the window (the failed-jobs count, from the ledger, says one job).
        job = defer(conn)
        finish_in_past(conn, job, "failed", started_ago_s=500, finished_ago_s=499)
        set_status(conn, job, "todo")  # manual retry (retried event)
        set_status(conn, job, "doing")
        set_status(conn, job, "failed")
        stats = load_queue_stats(conn)
        assert (stats.failed_jobs, stats.total_jobs, stats.success_rate) == (2, 2, 0)
        assert load_failed_jobs(conn).total_failed_jobs == 1

    def test_deleted_job_leaves_the_window(self, conn: psycopg.Connection) -> None:
        job = defer(conn)
        set_status(conn, job, "doing")
        set_status(conn, job, "succeeded")
        assert load_queue_stats(conn).successful_jobs == 1
        conn.execute("delete from procrastinate_jobs where id = %s", (job,))
        assert load_queue_stats(conn).successful_jobs == 0


class TestWorkerHealth:
    def test_every_field(self, conn: psycopg.Connection) -> None:
        fresh = add_worker(conn, heartbeat_ago_s=5, host=("web-1", 101, 12.5, 256.0, 8))
        silent = add_worker(conn, heartbeat_ago_s=61 * 60, host=("web-2", 102, 1.0, 64.0, 4))
        hot = add_worker(conn, heartbeat_ago_s=5, host=("web-3", 103, 97.0, 128.0, 2))
        bare = add_worker(conn, heartbeat_ago_s=5)  # not instrumented
        for worker, n in ((fresh, 2), (silent, 1), (hot, 1), (bare, 1)):
            for _ in range(n):
                set_status(conn, defer(conn, queue="q", task="t"), "doing", worker)
        orphan = defer(conn, queue="q", task="orphan")
        set_status(conn, orphan, "doing", None)  # its worker row is gone

        health = load_worker_health(conn)
        by_id = {w.worker_id: w for w in health.workers}
        assert (health.total_workers, health.active_workers) == (4, 2)
        assert health.jobs_in_progress == 6
        w = by_id[fresh]
        assert (w.hostname, w.pid, w.healthy, w.jobs, w.max_jobs) == ("web-1", 101, True, 2, 8)
        assert (w.cpu_percent, w.memory_mb, w.worker_name) == (12.5, 256.0, "w-web-1")
        assert 5 <= w.heartbeat_age_s < 30 and w.last_heartbeat.utcoffset() == timedelta(0)
        assert by_id[silent].healthy is False
        assert by_id[silent].heartbeat_age_s >= 3660  # total seconds, not .seconds
        assert by_id[hot].healthy is False and by_id[hot].cpu_percent == 97.0
        b = by_id[bare]
        assert b.healthy is True and b.jobs == 1
        assert (b.hostname, b.pid, b.cpu_percent, b.memory_mb, b.max_jobs) == (None,) * 5
        # Stalled: on the silent worker, on the hot worker, and the orphan.
        assert health.stalled_jobs == 3
        assert {(s.task, s.worker_id) for s in health.stalled} == {
            ("t", silent), ("t", hot), ("orphan", None),
        }  # fmt: skip

    def test_threshold_is_configurable(self, conn: psycopg.Connection) -> None:
        add_worker(conn, heartbeat_ago_s=200)
        assert load_worker_health(conn).active_workers == 0
        assert load_worker_health(conn, healthy_heartbeat_s=300).active_workers == 1

    def test_no_workers(self, conn: psycopg.Connection) -> None:
        health = load_worker_health(conn)
        assert (health.total_workers, health.active_workers, health.stalled_jobs) == (0, 0, 0)
        assert health.workers == [] and health.stalled == []


class TestFailedJobs:
    def _fail(self, conn: psycopg.Connection, ago_s: float, **kw: object) -> int:
        job = defer(conn, **kw)  # type: ignore[arg-type]
        finish_in_past(conn, job, "failed", started_ago_s=ago_s + 1, finished_ago_s=ago_s)
        return job

    def test_fields_order_and_errors(self, conn: psycopg.Connection) -> None:
        older = self._fail(conn, 300, queue="mail", task="send", args={"to": "x@example.com"})
        newer = self._fail(conn, 10, args={"big": "y" * 500})
        no_error = self._fail(conn, 100)
        record_error(conn, older, 1, "TimeoutError", "first attempt")
        record_error(conn, older, 2, "ValueError", "bad value")
        record_error(conn, newer, 1, "KeyError", "'id'")
        retried = self._fail(conn, 5)
        set_status(conn, retried, "todo")  # retried: no longer failed
        done = defer(conn)
        set_status(conn, done, "doing")
        set_status(conn, done, "succeeded")

        failed = load_failed_jobs(conn)
        assert failed.total_failed_jobs == 3
        assert [j.id for j in failed.jobs] == [newer, no_error, older]
        first, _, last = failed.jobs
        assert first.error == "KeyError: 'id'"
        assert first.payload_preview == '{"big":"' + "y" * 91 + "…"
        assert len(first.payload_preview) == 100
        assert last.error == "ValueError: bad value"  # the last recorded attempt
        assert (last.queue, last.task, last.attempts) == ("mail", "send", 1)
        assert last.payload_preview == '{"to":"x@example.com"}'
        assert failed.jobs[1].error is None
        now = db_now(conn)
        assert first.failed_at is not None
        assert timedelta(seconds=9) <= now - first.failed_at <= timedelta(seconds=30)

    def test_limit_and_latest_failure(self, conn: psycopg.Connection) -> None:
        jobs = [self._fail(conn, 100 + i) for i in range(5)]
        again = jobs[-1]  # failed longest ago, then retried and failed now
        set_status(conn, again, "todo")
        set_status(conn, again, "doing")
        set_status(conn, again, "failed")
        failed = load_failed_jobs(conn, limit=3)
        assert failed.total_failed_jobs == 5
        assert [j.id for j in failed.jobs] == [again, jobs[0], jobs[1]]

    def test_hostile_strings_come_back_verbatim(self, conn: psycopg.Connection) -> None:
        text = HOSTILE["html_and_script"][0] + " " + HOSTILE["markdown"][1]
        job = self._fail(conn, 10, task=HOSTILE["sql_and_shell"][0], args={"p": text})
        record_error(conn, job, 1, "<b>Err</b>", HOSTILE["unicode"][5])
        row = load_failed_jobs(conn).jobs[0]
        assert row.task == HOSTILE["sql_and_shell"][0]
        assert row.error == "<b>Err</b>: " + HOSTILE["unicode"][5]
        assert json.loads(row.payload_preview) == {"p": text}

    def test_huge_args_are_previewed_without_shipping_them(self, conn: psycopg.Connection) -> None:
        job = self._fail(conn, 10, args={"blob": secrets.token_hex(100_000)})
        preview = load_failed_jobs(conn).jobs[0].payload_preview
        assert job and len(preview) == 100 and preview.startswith('{"blob": "')
        assert preview.endswith("…")


def _periodic(
    conn: psycopg.Connection, task: str, cron: str, periodic_id: str = "", known_for_days: int = 400
) -> None:
    conn.execute(
        "insert into jobdash_periodic_tasks (task_name, periodic_id, cron, queue_name, "
        "published_by, first_published_at) "
        "values (%s, %s, %s, 'default', 'test', now() - make_interval(days => %s))",
        (task, periodic_id, cron, known_for_days),
    )


def _deferred_tick(conn: psycopg.Connection, task: str, cron: str, periodic_id: str = "") -> None:
    tick = latest_tick(cron, db_now(conn))
    conn.execute(
        "insert into procrastinate_periodic_defers (task_name, periodic_id, defer_timestamp) "
        "values (%s, %s, %s)",
        (task, periodic_id, int(tick.timestamp())),
    )


class TestScheduler:
    def test_empty(self, conn: psycopg.Connection) -> None:
        s = load_scheduler(conn)
        assert (s.total_scheduled_tasks, s.due_tasks, s.next_execution, s.upcoming) == (
            0, 0, None, [],
        )  # fmt: skip

    def test_periodic_and_onetime(self, conn: psycopg.Connection) -> None:
        now = db_now(conn)
        _periodic(conn, "tick", "* * * * * */15")
        _deferred_tick(conn, "tick", "* * * * * */15")
        _periodic(conn, "nightly", "0 3 * * *", "n")
        _deferred_tick(conn, "nightly", "0 3 * * *", "n")
        _periodic(conn, "missed", "0 0 1 1 *")  # never deferred, last tick months ago: due
        soon = defer(conn, task="later", scheduled_at=now + timedelta(minutes=7, seconds=30))
        late = defer(conn, task="late", scheduled_at=now - timedelta(minutes=3, seconds=5))
        far = defer(conn, task="far", scheduled_at=now + timedelta(days=2, hours=3, minutes=1))
        just = defer(conn, task="just", scheduled_at=now - timedelta(seconds=10))  # most likely
        started = defer(conn, task="running", scheduled_at=now - timedelta(minutes=1))
        set_status(conn, started, "doing")  # no longer todo: not scheduled
        defer(conn, task="plain")  # no scheduled_at: not scheduled

        s = load_scheduler(conn)
        assert s.total_scheduled_tasks == 3 + 4
        assert s.due_tasks == 2  # "just" came due 10 s ago: within the grace, not late
        tasks = {t.id: t for t in s.upcoming}
        assert [t.id for t in s.upcoming][:2] == ["missed", str(late)]  # due first
        missed = tasks["missed"]
        assert missed.is_due and missed.last_run is None and missed.schedule_type == "cron"
        assert missed.next_run_relative.startswith("overdue by ")
        assert tasks[str(late)].is_due and tasks[str(late)].next_run_relative == "overdue by 3 min"
        t = tasks["tick"]
        assert (t.schedule_type, t.schedule, t.schedule_description) == (
            "interval", "* * * * * */15", "Every 15 seconds",
        )  # fmt: skip
        assert not t.is_due and t.last_run is not None and t.last_run <= now
        assert t.next_run_relative == "in less than 1 minute"
        assert s.next_execution == t.next_run
        n = tasks["nightly[n]"]
        assert (n.schedule_type, n.schedule_description) == ("cron", "At 03:00")
        o = tasks[str(soon)]
        assert (o.schedule_type, o.schedule, o.task, o.queue) == (
            "onetime", None, "later", "default",
        )  # fmt: skip
        assert o.next_run_relative == "in 7 min" and not o.is_due
        assert tasks[str(far)].next_run_relative == "in 2 days, 3 hours"
        assert not tasks[str(just)].is_due
        assert [x.next_run for x in s.upcoming] == sorted(x.next_run for x in s.upcoming)

    def test_limit_keeps_counts_exact(self, conn: psycopg.Connection) -> None:
        now = db_now(conn)
        for i in range(15):
            defer(conn, scheduled_at=now + timedelta(hours=i + 1))
        s = load_scheduler(conn, limit=10)
        assert len(s.upcoming) == 10 and s.total_scheduled_tasks == 15

    def test_recent_missed_tick_within_grace_is_not_due(self, conn: psycopg.Connection) -> None:
        _periodic(conn, "every_second", "* * * * * *")  # latest tick ≤ 1 s old, never deferred
        assert load_scheduler(conn).due_tasks == 0

    def test_tick_before_first_publication_is_not_a_missed_run(
        self, conn: psycopg.Connection
    ) -> None:
        _periodic(conn, "nightly", "0 3 * * *", known_for_days=0)  # published just now
        s = load_scheduler(conn)
        assert s.due_tasks == 0
        (task,) = s.upcoming
        assert not task.is_due and task.next_run > db_now(conn)

    def test_extra_periodic_from_app(self, conn: psycopg.Connection) -> None:
        _periodic(conn, "published", "*/5 * * * *")
        extra = [
            PeriodicDefinition("published", "", "*/5 * * * *", "default"),  # duplicate
            PeriodicDefinition("from_app", "", "*/10 * * * *", "other"),
        ]
        _deferred_tick(conn, "from_app", "*/10 * * * *")
        s = load_scheduler(conn, extra_periodic=extra)
        assert s.total_scheduled_tasks == 2
        app_task = next(t for t in s.upcoming if t.task == "from_app")
        assert app_task.queue == "other" and app_task.last_run is not None
        assert app_task.schedule_description == "Every 10 minutes"

    def test_invalid_cron_is_skipped(self, conn: psycopg.Connection) -> None:
        _periodic(conn, "broken", "not a cron")
        s = load_scheduler(conn)
        assert s.upcoming == [] and s.total_scheduled_tasks == 1


def test_periodic_definitions_from_app() -> None:
    app = App(connector=InMemoryConnector())

    @app.periodic(cron="*/5 * * * *")
    @app.task(queue="mail", name="send_digest")
    def send_digest(timestamp: int) -> None: ...

    @app.periodic(cron="0 3 * * *", periodic_id="nightly")
    @app.task(name="report")
    def report(timestamp: int) -> None: ...

    assert periodic_definitions(app) == [
        PeriodicDefinition("report", "nightly", "0 3 * * *", "default"),
        PeriodicDefinition("send_digest", "", "*/5 * * * *", "mail"),
    ]


def test_snapshot_has_every_panel(conn: psycopg.Connection) -> None:
    defer(conn)
    data = to_jsonable(load_snapshot(conn))
    keys = ["generated_at", "queue_stats", "worker_health", "failed_jobs", "scheduler"]
    assert list(data) == keys
    assert data["queue_stats"]["current_queue_size"] == 1
    json.dumps(data)
