"""Archive purge (called by the maintenance task) and the failed-jobs queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from jobdash.app.actions.jobs import delete_jobs
from jobdash.app.read.audit import AuditFilter, list_audit_log
from jobdash.app.read.failed_jobs import (
    FailedJobFilter,
    count_failed_jobs,
    export_failed_jobs_rows,
    list_deleted_jobs,
    list_failed_jobs,
    parse_utc,
)
from jobdash.app.read.job_detail import load_job_detail
from jobdash.core.errors import FilterError
from jobdash.jobs.maintenance.archive_purge import purge_archived_jobs
from tests.actions_helpers import as_operator, make_failed_jobs


def test_purge_removes_only_archives_older_than_retention(conn):
    old, recent = make_failed_jobs(conn, 2)
    delete_jobs(conn, [old, recent], as_operator("a"))
    conn.execute(
        "UPDATE jobdash_deleted_jobs SET deleted_at = now() - interval '31 days' WHERE job_id = %s",
        (old,),
    )
    assert purge_archived_jobs(conn, 30) == 1
    assert [r[0] for r in conn.execute("SELECT job_id FROM jobdash_deleted_jobs")] == [recent]
    assert purge_archived_jobs(conn, 30) == 0


def test_keyset_pages_newest_failure_first_without_gaps(conn):
    ids = make_failed_jobs(conn, 120)
    # Spread failure times; make one job fail twice (it must be listed once, at the latest).
    conn.execute(
        "UPDATE procrastinate_events SET at = at - (job_id * interval '1 second') "
        "WHERE job_id = ANY(%s)",
        (ids,),
    )
    conn.execute(  # the failed list's times with them (the list is what the page reads)
        "UPDATE jobdash_failed_jobs SET failed_at = failed_at - (job_id * interval '1 second') "
        "WHERE job_id = ANY(%s)",
        (ids,),
    )
    seen, cursor = [], None
    while True:
        page = list_failed_jobs(conn, FailedJobFilter(), limit=50, before=cursor)
        seen += [row["id"] for row in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(ids)  # smaller id = later failure here
    assert count_failed_jobs(conn, FailedJobFilter()) == 120
    conn.execute("UPDATE procrastinate_jobs SET status = 'todo' WHERE id = %s", (ids[0],))
    conn.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (ids[0],))
    conn.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", (ids[0],))
    first = list_failed_jobs(conn, FailedJobFilter(), limit=500).rows
    assert [r["id"] for r in first].count(ids[0]) == 1
    assert first[0]["id"] == ids[0]


def test_filters(conn):
    make_failed_jobs(conn, 3, queue="emails", task="send", exception_type="KeyError")
    make_failed_jobs(
        conn, 2, queue="billing", task="charge", exception_type="TimeoutError", message="slow 50%"
    )
    assert count_failed_jobs(conn, FailedJobFilter(queue="emails")) == 3
    assert count_failed_jobs(conn, FailedJobFilter(task="charge")) == 2
    assert count_failed_jobs(conn, FailedJobFilter(exception_type="KeyError")) == 3
    assert count_failed_jobs(conn, FailedJobFilter(error_contains="50%")) == 2
    assert count_failed_jobs(conn, FailedJobFilter(error_contains="5_%")) == 0
    now = conn.execute("SELECT now()").fetchone()[0]
    assert count_failed_jobs(conn, FailedJobFilter(failed_since=now - timedelta(hours=1))) == 5
    assert count_failed_jobs(conn, FailedJobFilter(failed_until=now - timedelta(hours=1))) == 0


def test_filter_round_trips_through_query_params():
    f = FailedJobFilter(
        queue="q", error_contains="x y", failed_since=parse_utc("2024-05-01T10:00:00Z")
    )
    params = f.to_query_params()
    assert params == {
        "queue": "q",
        "error_contains": "x y",
        "failed_since": "2024-05-01T10:00:00+00:00",
    }
    assert FailedJobFilter.from_query_params(params) == f
    assert FailedJobFilter.from_query_params({"queue": " "}) == FailedJobFilter()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"failed_since": "garbage"}, "failed_since: not an ISO 8601 date or time: 'garbage'"),
        ({"queue": "a\x00b"}, "queue: contains a NUL character"),
        ({"task": "x" * 501}, "task: longer than 500 characters"),
    ],
)
def test_a_bad_filter_value_is_an_error_never_every_job(params, message):
    with pytest.raises(FilterError, match=re.escape(message)):
        FailedJobFilter.from_query_params(params)


def test_an_unknown_filter_is_an_error_where_only_filters_are_expected():
    with pytest.raises(FilterError, match="unknown filter 'queeu'"):
        FailedJobFilter.from_query_params({"queeu": "x"}, only_filter_keys=True)
    assert FailedJobFilter.from_query_params({"page_size": "50"}) == FailedJobFilter()


def test_a_date_alone_means_the_whole_day():
    f = FailedJobFilter.from_query_params(
        {"failed_since": "2024-05-01", "failed_until": "2024-05-01"}
    )
    assert f.failed_since == parse_utc("2024-05-01T00:00:00Z")
    assert f.failed_until == parse_utc("2024-05-02T00:00:00Z")


def test_export_streams_all_matching_rows(database_url, conn):
    make_failed_jobs(conn, 30, queue="a")
    make_failed_jobs(conn, 5, queue="b")
    rows = list(export_failed_jobs_rows(conn, FailedJobFilter(queue="a"), chunk_rows=7))
    assert len(rows) == 30 and {r[1] for r in rows} == {"a"}


def test_detail_of_live_deleted_and_unknown_job(conn):
    [job_id] = make_failed_jobs(conn, 1, message="bad thing")
    detail = load_job_detail(conn, job_id)
    assert detail.job["status"] == "failed"
    assert [e["type"] for e in detail.events] == ["deferred", "started", "failed"]
    assert detail.errors[0]["message"] == "bad thing"
    assert detail.events[0]["at"].utcoffset() == timedelta(0)
    delete_jobs(conn, [job_id], as_operator("a"))
    archived = load_job_detail(conn, job_id)
    assert archived.deleted_by == "a" and archived.job["id"] == job_id
    assert [e["type"] for e in archived.events] == ["deferred", "started", "failed"]
    assert archived.events[0]["at"].utcoffset() == timedelta(0)
    assert load_job_detail(conn, 987_654) is None
    assert [r["job_id"] for r in list_deleted_jobs(conn)] == [job_id]
    assert list_audit_log(conn, AuditFilter(action="delete"))[0]["job_ids"] == [job_id]
    assert list_audit_log(conn, AuditFilter(job_id=job_id))[0]["actor"] == "a"
    assert list_audit_log(conn, AuditFilter(actor="nobody")) == []
