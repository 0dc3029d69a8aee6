"""The "never falls over" machinery: shared values, last good data, stale notice, spaced
retries, recovery, one load at a time."""

from __future__ import annotations

import logging
import threading

import psycopg
import pytest

from jobdash.app.cache.data import app_periodic_definitions
from jobdash.app.cache.shared_cache import Result, SharedCache, cache_ttl
from jobdash.app.ui.widgets.results import stale_text
from jobdash.core.errors import DatabaseUnavailable, describe_error


class Clock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class FlakyLoader:
    """Returns increasing numbers, or raises while `failing` is set; counts calls."""

    def __init__(self) -> None:
        self.failing: Exception | None = None
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.failing is not None:
            raise self.failing
        return self.calls


KEY = ("queue_stats", "postgresql://x")


def test_failure_keeps_last_good_data_with_stale_notice_then_recovers(caplog) -> None:
    clock = Clock()
    cache = SharedCache(clock)
    load = FlakyLoader()

    first = cache.fetch(KEY, load, ttl_s=4)
    assert first == Result(1, clock.now)
    assert not first.is_stale

    clock.now += 5
    load.failing = DatabaseUnavailable("cannot connect to db:5432/x (no connection within 4 s)")
    with caplog.at_level(logging.WARNING, logger="jobdash.app.cache.shared_cache"):
        stale = cache.fetch(KEY, load, ttl_s=4)
    failed_at = clock.now
    assert stale.data == 1 and stale.loaded_at == failed_at - 5
    assert stale.is_stale and stale.stale_since == failed_at
    assert "cannot connect" in caplog.text
    notice = stale_text(stale)
    assert notice.startswith("stale since ") and " — cannot connect to db\\:5432/x" in notice

    # Still failing later: "since" stays the first failure time.
    clock.now += 5
    again = cache.fetch(KEY, load, ttl_s=4)
    assert again.stale_since == failed_at and again.data == 1

    clock.now += 5
    load.failing = None
    recovered = cache.fetch(KEY, load, ttl_s=4)
    assert not recovered.is_stale and recovered.data == load.calls


def test_values_are_shared_within_their_ttl() -> None:
    clock = Clock()
    cache = SharedCache(clock)
    load = FlakyLoader()
    for _ in range(20):  # twenty viewers ticking
        assert cache.fetch(KEY, load, ttl_s=4).data == 1
    clock.now += 4.1
    assert cache.fetch(KEY, load, ttl_s=4).data == 2
    assert load.calls == 2


def test_retries_are_spaced_while_failing() -> None:
    clock = Clock()
    cache = SharedCache(clock)
    load = FlakyLoader()
    load.failing = RuntimeError("boom")
    cache.fetch(KEY, load, ttl_s=4)
    assert load.calls == 1
    for _ in range(3):  # many viewers ticking within the retry spacing
        clock.now += 1
        result = cache.fetch(KEY, load, ttl_s=4)
        assert result.error == "RuntimeError: boom"
    assert load.calls == 1
    clock.now += 1.5
    cache.fetch(KEY, load, ttl_s=4)
    assert load.calls == 2


def test_failure_without_good_data_has_no_data() -> None:
    cache = SharedCache(Clock())
    load = FlakyLoader()
    load.failing = RuntimeError("no table")
    result = cache.fetch(KEY, load, ttl_s=4)
    assert result.data is None and result.loaded_at is None and result.is_stale


def test_invalidate_allows_an_immediate_reload() -> None:
    cache = SharedCache(Clock())
    load = FlakyLoader()
    load.failing = RuntimeError("x")
    cache.fetch(KEY, load, ttl_s=60)
    load.failing = None
    cache.invalidate("queue_stats")
    assert cache.fetch(KEY, load, ttl_s=60).data == 2
    cache.invalidate("other")
    assert cache.fetch(KEY, load, ttl_s=60).data == 2  # untouched
    cache.invalidate()
    assert cache.fetch(KEY, load, ttl_s=60).data == 3


def test_keys_are_independent() -> None:
    cache = SharedCache(Clock())
    good, bad = FlakyLoader(), FlakyLoader()
    bad.failing = RuntimeError("x")
    assert cache.fetch(("scheduler", "u"), bad, ttl_s=4).is_stale
    assert not cache.fetch(("failed_jobs", "u"), good, ttl_s=4).is_stale


def test_while_one_session_loads_the_others_get_the_previous_value_at_once() -> None:
    clock = Clock()
    cache = SharedCache(clock)
    assert cache.fetch(KEY, lambda: "old", ttl_s=4).data == "old"
    clock.now += 5
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        assert release.wait(10)
        return "new"

    loader = threading.Thread(target=lambda: cache.fetch(KEY, slow, ttl_s=4))
    loader.start()
    assert started.wait(10)
    assert cache.fetch(KEY, lambda: "never called", ttl_s=4).data == "old"
    release.set()
    loader.join(10)
    assert cache.fetch(KEY, lambda: "never called", ttl_s=4).data == "new"


def test_the_number_of_entries_is_bounded() -> None:
    cache = SharedCache(Clock(), max_entries=3)
    for i in range(10):
        cache.fetch(("page", i), lambda i=i: i, ttl_s=60)
    calls = []
    cache.fetch(("page", 0), lambda: calls.append(0) or 0, ttl_s=60)
    assert calls == [0]  # the oldest entries were dropped


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


def test_a_bad_jobdash_app_path_is_a_warning_not_a_failure() -> None:
    definitions, warning = app_periodic_definitions("no_such_module_xyz:app")
    assert definitions == []
    assert warning is not None and warning.startswith("periodic tasks of no_such_module_xyz:app")
