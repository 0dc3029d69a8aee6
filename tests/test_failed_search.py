"""The failed-jobs page's error filters search at most `scan` failed jobs per page (no index
finds an error text): a page that does not fill says how far it searched and "Older »" goes on
from there; the count is exact up to COUNT_SAMPLE failed jobs, else the matches among the
newest of them with the estimate their share gives."""

from __future__ import annotations

import psycopg

from jobdash.app.read import failed_jobs
from jobdash.app.read.failed_jobs import (
    FailedCount,
    FailedJobFilter,
    count_failed_jobs,
    count_failed_page,
    load_failed_page,
)
from tests.actions_helpers import make_failed_jobs


def _failures(conn: psycopg.Connection) -> tuple[list[int], list[int]]:
    """Two old rare failures, then ten newer common ones (each batch fails later)."""
    rare = make_failed_jobs(conn, 2, exception_type="KeyError", message="rare needle")
    common = make_failed_jobs(conn, 10, exception_type="ValueError", message="boom")
    return rare, common


def test_a_page_that_does_not_fill_says_how_far_it_searched(conn: psycopg.Connection) -> None:
    rare, _ = _failures(conn)
    needle = FailedJobFilter(error_contains="needle")
    first = load_failed_page(conn, needle, limit=50, scan=4)
    # The newest four failed jobs hold no match: nothing listed, but the search went on no
    # further than four, and the next page starts after the fourth.
    assert first.rows == [] and first.searched == 4 and first.scan == 4
    assert first.next_cursor is not None
    assert first.count == FailedCount(0, exact=False, searched=4, estimate=0)
    pages = [first]
    while pages[-1].next_cursor is not None:
        pages.append(load_failed_page(conn, needle, 50, pages[-1].next_cursor, scan=4))
    found = [row["id"] for page in pages for row in page.rows]
    assert sorted(found) == sorted(rare)
    assert len(pages) == 3  # 12 failed jobs, 4 a page; the last reached the oldest
    assert pages[-1].searched is None


def test_within_the_window_the_count_is_exact(conn: psycopg.Connection) -> None:
    rare, _ = _failures(conn)
    needle = FailedJobFilter(error_contains="needle")
    page = load_failed_page(conn, needle, limit=50, scan=100)
    assert sorted(row["id"] for row in page.rows) == sorted(rare)
    assert page.searched is None and page.next_cursor is None
    assert page.count == FailedCount(2)
    assert page.count.text(filtered=True) == "2 failed jobs match the filter"
    assert count_failed_jobs(conn, needle) == 2


def test_past_the_window_the_count_is_estimated_from_the_newest(
    conn: psycopg.Connection,
) -> None:
    _failures(conn)
    common = FailedJobFilter(exception_type="ValueError")
    count = count_failed_page(conn, common, scan=5)
    # All five newest are ValueErrors: 5/5 of the 12 listed failed jobs.
    assert count == FailedCount(5, exact=False, searched=5, estimate=12)
    assert count.number == 12
    assert count.text(filtered=True) == (
        "≈ 12 failed jobs match the filter (estimated: 5 of the newest 5 failed jobs match)"
    )
    # A page that fills stops at its rows; its next page starts after the last one shown.
    page = load_failed_page(conn, common, limit=3, scan=5)
    assert len(page.rows) == 3 and page.searched is None and page.next_cursor is not None
    # With a time filter there is no exact total to scale: the share alone.
    timed = FailedJobFilter(exception_type="ValueError", failed_since=page.rows[0]["failed_at"])
    assert count_failed_page(conn, timed, scan=1).estimate is None


def test_a_job_no_longer_failed_is_neither_listed_nor_counted(conn: psycopg.Connection) -> None:
    rare, _ = _failures(conn)
    conn.execute("update procrastinate_jobs set status = 'todo' where id = %s", (rare[0],))
    needle = FailedJobFilter(error_contains="needle")
    page = load_failed_page(conn, needle, limit=50, scan=100)
    assert [row["id"] for row in page.rows] == [rare[1]]
    assert page.count == FailedCount(1)


def test_the_count_reads_at_most_its_sample(conn: psycopg.Connection, monkeypatch) -> None:
    """However large the page's search window, the count looks at COUNT_SAMPLE failed jobs."""
    _failures(conn)
    monkeypatch.setattr(failed_jobs, "COUNT_SAMPLE", 4)
    count = count_failed_page(conn, FailedJobFilter(exception_type="ValueError"), scan=100)
    assert count == FailedCount(4, exact=False, searched=4, estimate=12)
    # A first page that searched every failed job counts what it found: exact, no second pass.
    page = load_failed_page(conn, FailedJobFilter(error_contains="needle"), limit=50, scan=100)
    assert len(page.rows) == 2 and page.count == FailedCount(2)
    # One that stopped at its window counts its matches among what it searched.
    page = load_failed_page(conn, FailedJobFilter(error_contains="needle"), limit=50, scan=6)
    assert page.rows == [] and page.count == FailedCount(0, False, 6, estimate=0)
