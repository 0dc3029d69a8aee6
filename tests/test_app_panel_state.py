"""The "never falls over" machinery: last good data, stale notice, spaced retries, recovery."""

from __future__ import annotations

import logging

import psycopg
import pytest

from jobdash.app.ui.data import (
    Loaded,
    PanelMemory,
    PanelResult,
    cache_ttl,
    clear_panel_caches,
    stale_notice,
)
from jobdash.core.errors import DatabaseUnavailable, describe_error


class Clock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class FlakyLoader:
    """Returns increasing numbers, or raises while `failing` is set; counts calls."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.failing: Exception | None = None
        self.calls = 0

    def __call__(self) -> Loaded:
        self.calls += 1
        if self.failing is not None:
            raise self.failing
        return Loaded(self.calls, self.clock())


KEY = ("queue_stats", "postgresql://x")


def test_failure_keeps_last_good_data_with_stale_notice_then_recovers(caplog) -> None:
    clock = Clock()
    memory = PanelMemory(clock)
    load = FlakyLoader(clock)

    first = memory.fetch(KEY, load, retry_after_s=4)
    assert first == PanelResult(1, clock.now)
    assert not first.is_stale

    clock.now += 5
    load.failing = DatabaseUnavailable("cannot connect to db:5432/x (no connection within 4 s)")
    with caplog.at_level(logging.WARNING, logger="jobdash.app.ui.data"):
        stale = memory.fetch(KEY, load, retry_after_s=4)
    failed_at = clock.now
    assert stale.data == 1 and stale.loaded_at == failed_at - 5
    assert stale.is_stale and stale.stale_since == failed_at
    assert "cannot connect" in caplog.text
    notice = stale_notice(stale)
    assert notice is not None
    assert notice.startswith("stale since ") and " — cannot connect to db:5432/x" in notice

    # Still failing later: "since" stays the first failure time.
    clock.now += 5
    again = memory.fetch(KEY, load, retry_after_s=4)
    assert again.stale_since == failed_at and again.data == 1

    clock.now += 5
    load.failing = None
    recovered = memory.fetch(KEY, load, retry_after_s=4)
    assert not recovered.is_stale and recovered.data == load.calls
    assert stale_notice(recovered) is None


def test_retries_are_spaced_while_failing() -> None:
    clock = Clock()
    memory = PanelMemory(clock)
    load = FlakyLoader(clock)
    load.failing = RuntimeError("boom")
    memory.fetch(KEY, load, retry_after_s=4)
    assert load.calls == 1
    for _ in range(3):  # many viewers ticking within the retry spacing
        clock.now += 1
        result = memory.fetch(KEY, load, retry_after_s=4)
        assert result.error == "RuntimeError: boom"
    assert load.calls == 1
    clock.now += 1.5
    memory.fetch(KEY, load, retry_after_s=4)
    assert load.calls == 2


def test_failure_without_good_data_has_no_data() -> None:
    clock = Clock()
    memory = PanelMemory(clock)
    load = FlakyLoader(clock)
    load.failing = RuntimeError("no table")
    result = memory.fetch(KEY, load, retry_after_s=4)
    assert result.data is None and result.loaded_at is None and result.is_stale


def test_forget_failures_allows_an_immediate_retry() -> None:
    clock = Clock()
    memory = PanelMemory(clock)
    load = FlakyLoader(clock)
    load.failing = RuntimeError("x")
    memory.fetch(KEY, load, retry_after_s=60)
    load.failing = None
    memory.forget_failures(("queue_stats",))
    assert memory.fetch(KEY, load, retry_after_s=60).data == 2


def test_panels_are_independent() -> None:
    clock = Clock()
    memory = PanelMemory(clock)
    good, bad = FlakyLoader(clock), FlakyLoader(clock)
    bad.failing = RuntimeError("x")
    assert memory.fetch(("scheduler", "u"), bad, retry_after_s=4).is_stale
    assert not memory.fetch(("failed_jobs", "u"), good, retry_after_s=4).is_stale


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
            "query cancelled: it ran longer than the statement timeout",
        ),
        (
            psycopg.OperationalError("server closed the connection unexpectedly\nmore"),
            "database error: server closed the connection unexpectedly",
        ),
        (ValueError(""), "ValueError"),
        (KeyError("k"), "KeyError: 'k'"),
    ],
)
def test_describe_error(exc: Exception, expected: str) -> None:
    assert describe_error(exc) == expected


def test_cache_ttl_is_just_below_the_interval() -> None:
    assert cache_ttl(5) == 4.5
    assert cache_ttl(30) == 29.5
    assert 0 < cache_ttl(0.5) < 0.5


def test_clear_panel_caches_rejects_unknown_names() -> None:
    clear_panel_caches()
    clear_panel_caches("failed_jobs", "queue_stats")
    with pytest.raises(ValueError, match="unknown panel"):
        clear_panel_caches("failed")


def test_a_bad_jobdash_app_path_is_a_warning_not_a_failure() -> None:
    from jobdash.app.ui.data import app_periodic_definitions

    definitions, warning = app_periodic_definitions("no_such_module_xyz:app")
    assert definitions == []
    assert warning is not None and warning.startswith("periodic tasks of no_such_module_xyz:app")
