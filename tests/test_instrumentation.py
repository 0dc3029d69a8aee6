"""The error-recording middleware, with a real worker on a real database."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import pytest
from procrastinate import App, JobContext, RetryStrategy

from jobdash.jobs.instrumentation.middleware import (
    MAX_TEXT_BYTES,
    qualified_name,
    storable_text,
    truncate_head,
    truncate_middle,
)
from tests.hostile import HOSTILE
from tests.test_instrumentation_support import (
    all_finished,
    defer,
    job_finished,
    job_state,
    make_app,
    query_all,
    run_async,
    run_worker_until,
)


class PaymentDeclinedError(Exception):
    pass


def add_tasks(app: App) -> None:
    @app.task(name="fail_sync", retry=2)
    def fail_sync(message: str) -> None:
        raise ValueError(message)

    @app.task(name="fail_async", retry=2)
    async def fail_async(message: str) -> None:
        await asyncio.sleep(0)
        raise ValueError(message)

    @app.task(name="decline", retry=RetryStrategy(max_attempts=5, retry_exceptions=[TimeoutError]))
    def decline(amount: int) -> None:
        raise PaymentDeclinedError(f"card declined for {amount}")

    @app.task(name="flaky", retry=3, pass_context=True)
    def flaky(context: JobContext) -> str:
        if context.job.attempts == 0:
            raise KeyError("first attempt fails")
        return "ok"

    @app.task(name="ok")
    async def ok() -> int:
        return 1

    @app.task(name="fail_once_no_retry")
    def fail_once_no_retry() -> None:
        raise TimeoutError("slow upstream")


@pytest.fixture
def app(database_url: str) -> App:
    app = make_app(database_url)
    add_tasks(app)
    return app


def error_rows(database_url: str, job_id: int) -> list[tuple]:
    return query_all(
        database_url,
        "select attempt, exception_type, message, traceback, will_retry, worker_id, hostname, pid"
        " from jobdash_job_errors where job_id = %s order by attempt",
        (job_id,),
    )


@pytest.mark.parametrize("task_name", ["fail_sync", "fail_async"])
def test_every_failed_attempt_is_recorded_with_the_retry_decision(app, database_url, task_name):
    job_id = defer(app, task_name, message="boom <b>42</b>")

    worker = run_worker_until(app, job_finished(database_url, job_id))

    assert job_state(database_url, job_id) == ("failed", 3)
    rows = error_rows(database_url, job_id)
    assert [r[0] for r in rows] == [1, 2, 3]
    assert [r[4] for r in rows] == [True, True, False]
    for _, exc_type, message, tb, _, worker_id, hostname, pid in rows:
        assert exc_type == "builtins.ValueError"
        assert message == "boom <b>42</b>"
        assert tb.startswith("Traceback (most recent call last):")
        assert f"in {task_name}" in tb
        assert tb.rstrip().endswith("ValueError: boom <b>42</b>")
        assert worker_id is not None
        assert hostname == socket.gethostname()
        assert pid == os.getpid()
    assert rows[0][5] == worker.registry.worker_id


def test_custom_exception_not_in_retry_exceptions_is_final(app, database_url):
    job_id = defer(app, "decline", amount=12)

    run_worker_until(app, job_finished(database_url, job_id))

    assert job_state(database_url, job_id) == ("failed", 1)
    rows = error_rows(database_url, job_id)
    assert len(rows) == 1
    attempt, exc_type, message, _, will_retry, *_ = rows[0]
    assert (attempt, will_retry) == (1, False)
    assert exc_type == f"{__name__}.PaymentDeclinedError"
    assert message == "card declined for 12"


def test_success_after_a_failure_keeps_only_the_failed_attempt(app, database_url):
    flaky_id = defer(app, "flaky")
    ok_id = defer(app, "ok")

    run_worker_until(app, all_finished(database_url, [flaky_id, ok_id]))

    assert job_state(database_url, flaky_id) == ("succeeded", 2)
    assert [(r[0], r[1], r[4]) for r in error_rows(database_url, flaky_id)] == [
        (1, "builtins.KeyError", True)
    ]
    assert error_rows(database_url, ok_id) == []


def _outcomes(database_url: str, job_ids: list[int]) -> list[tuple[str, int]]:
    return [job_state(database_url, job_id) for job_id in job_ids]


def _defer_mix(app: App) -> list[int]:
    return [
        defer(app, "fail_sync", message="a"),
        defer(app, "fail_async", message="b"),
        defer(app, "decline", amount=1),
        defer(app, "flaky"),
        defer(app, "ok"),
        defer(app, "fail_once_no_retry"),
    ]


def test_a_broken_error_table_never_changes_a_jobs_outcome(app, database_url, conn, caplog):
    # Baseline: the same jobs run by a plain, uninstrumented Procrastinate worker.
    baseline_ids = _defer_mix(app)

    async def plain_worker() -> None:
        async with app.open_async():
            await app.run_worker_async(wait=False, install_signal_handlers=False)

    run_async(plain_worker())
    baseline = _outcomes(database_url, baseline_ids)
    assert baseline == [
        ("failed", 3),
        ("failed", 3),
        ("failed", 1),
        ("succeeded", 2),
        ("succeeded", 1),
        ("failed", 1),
    ]

    conn.execute("drop table jobdash_job_errors")
    instrumented_ids = _defer_mix(app)
    with caplog.at_level(logging.DEBUG, logger="jobdash.jobs.instrumentation"):
        run_worker_until(app, all_finished(database_url, instrumented_ids))

    assert _outcomes(database_url, instrumented_ids) == baseline
    assert any("could not record the error" in r.getMessage() for r in caplog.records)


def test_a_huge_message_and_traceback_are_truncated_visibly(app, database_url):
    message = "x" * (1024 * 1024)

    @app.task(name="huge", retry=False)
    def huge() -> None:
        raise ValueError(message)

    job_id = defer(app, "huge")
    run_worker_until(app, job_finished(database_url, job_id))

    ((stored_message, stored_tb),) = query_all(
        database_url,
        "select message, traceback from jobdash_job_errors where job_id = %s",
        (job_id,),
    )
    assert len(stored_message.encode()) <= MAX_TEXT_BYTES
    assert stored_message.startswith("x" * 60_000)
    kept = stored_message.index("…")
    assert stored_message.endswith(f"… [truncated {len(message) - kept} bytes]")
    assert len(stored_tb.encode()) <= MAX_TEXT_BYTES
    assert stored_tb.startswith("Traceback (most recent call last):")
    assert "[truncated " in stored_tb
    assert stored_tb.rstrip().endswith("xxxx")  # the tail (the exception line) is kept


def test_hostile_strings_are_stored_verbatim(app, database_url):
    strings = [
        s
        for key in (
            "html_and_script",
            "markdown",
            "spreadsheet_formulas",
            "sql_and_shell",
            "unicode",
        )
        for s in HOSTILE[key]
    ]

    @app.task(name="hostile")
    def hostile(index: int) -> None:
        raise RuntimeError(strings[index])

    job_ids = [defer(app, "hostile", index=i) for i in range(len(strings))]
    run_worker_until(app, all_finished(database_url, job_ids))

    rows = query_all(
        database_url,
        "select e.message from jobdash_job_errors e join unnest(%s::bigint[]) with ordinality"
        " as j(id, n) on j.id = e.job_id order by j.n",
        (job_ids,),
    )
    assert [r[0] for r in rows] == strings


# Pure rules: no database.


def test_qualified_name_includes_the_module():
    assert qualified_name(ValueError()) == "builtins.ValueError"
    assert qualified_name(PaymentDeclinedError()) == f"{__name__}.PaymentDeclinedError"


def test_storable_text_escapes_what_postgres_rejects():
    assert storable_text("a\x00b") == "a\\x00b"
    assert storable_text("lone \ud800 surrogate") == "lone \\ud800 surrogate"
    assert storable_text("Grüße 🚀") == "Grüße 🚀"


def test_truncate_head_respects_the_byte_limit_and_character_boundaries():
    text = "é" * 100  # 200 bytes
    result = truncate_head(text, limit=101)
    assert len(result.encode()) <= 101
    kept = result.split("…")[0]
    assert set(kept) == {"é"}
    assert result.endswith(f"[truncated {200 - 2 * len(kept)} bytes]")
    assert truncate_head("short", limit=10) == "short"


def test_truncate_middle_keeps_both_ends():
    text = "HEAD" + "-" * 10_000 + "TAIL"
    result = truncate_middle(text, limit=200)
    assert len(result.encode()) <= 200
    assert result.startswith("HEAD") and result.endswith("TAIL")
    assert "[truncated " in result


def test_repeated_recording_failures_warn_once_a_minute(caplog, monkeypatch):
    from jobdash.jobs.instrumentation import log_throttle as warnings
    monkeypatch.setattr(warnings, "_last_warned", {})
    log = logging.getLogger("jobdash.jobs.instrumentation.test")
    with caplog.at_level(logging.DEBUG, logger=log.name):
        for _ in range(3):
            try:
                raise RuntimeError("table missing")
            except RuntimeError:
                warnings.warn_throttled(log, "kind", "failed %s", 1)
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert caplog.records[0].exc_info is not None


def test_the_teams_own_worker_middleware_still_runs(app, database_url):
    seen: list[int] = []

    async def team_middleware(call_next, context, worker):
        seen.append(context.job.id)
        return await call_next()

    job_id = defer(app, "fail_once_no_retry")
    run_worker_until(app, job_finished(database_url, job_id), worker_middleware=[team_middleware])
    assert seen == [job_id]
    assert len(error_rows(database_url, job_id)) == 1
