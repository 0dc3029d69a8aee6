"""Failed sign-ins are limited per key, in a window, with bounded memory, across threads."""

from __future__ import annotations

import threading

from jobdash.core.auth.rate_limit import FailureLimiter, refusal_message


def test_five_failures_in_the_window_refuse_until_the_oldest_ages_out():
    limiter = FailureLimiter(limit=5, window_s=300)
    for second in range(4):
        limiter.record_failure("vera", now=second)
        assert limiter.retry_after("vera", now=second) == 0
    limiter.record_failure("vera", now=10)
    assert limiter.retry_after("vera", now=10) == 290  # the first failure, at 0, expires at 300
    assert limiter.retry_after("vera", now=299.5) == 0.5
    assert limiter.retry_after("vera", now=300) == 0
    assert limiter.retry_after("oscar", now=10) == 0  # other keys are not affected


def test_failures_spread_over_more_than_the_window_never_refuse():
    limiter = FailureLimiter(limit=5, window_s=300)
    for minute in range(20):
        assert limiter.retry_after("vera", now=minute * 61) == 0
        limiter.record_failure("vera", now=minute * 61)


def test_clear_forgets_a_key():
    limiter = FailureLimiter(limit=2, window_s=60)
    limiter.record_failure("k", now=0)
    limiter.record_failure("k", now=1)
    assert limiter.retry_after("k", now=2) > 0
    limiter.clear("k")
    assert limiter.retry_after("k", now=2) == 0


def test_memory_is_bounded_and_stale_keys_are_dropped():
    limiter = FailureLimiter(limit=5, window_s=60, max_keys=100)
    for i in range(1000):
        limiter.record_failure(f"name-{i}", now=0)
    assert len(limiter) == 100
    limiter.record_failure("late", now=61)
    assert len(limiter) == 1


def test_concurrent_failures_are_all_counted():
    limiter = FailureLimiter(limit=10_000, window_s=300)

    def fail() -> None:
        for _ in range(500):
            limiter.record_failure("shared", now=1)

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(limiter._failures["shared"]) == 4000


def test_the_refusal_is_one_line_in_whole_minutes():
    assert refusal_message(290) == "too many failed sign-ins: try again in 5 minutes"
    assert refusal_message(0.5) == "too many failed sign-ins: try again in 1 minute"
