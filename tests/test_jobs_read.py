"""The Jobs page's read model: states, every filter, keyset pages, bounded searches, counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobdash.app.read import jobs
from jobdash.app.read.job_filter import STATES, JobFilter, parse_ids
from jobdash.app.read.jobs import count_jobs, load_jobs_page, load_state_counts, search_plan
from jobdash.core.errors import FilterError
from jobdash.core.settings import DEFAULT_REDACT_ARGS
from tests.dashboard_data import add_job, add_worker


def ids_of(page: jobs.JobPage) -> list[int]:
    return [row["id"] for row in page.rows]


@pytest.fixture
def every_state(conn) -> dict[str, int]:
    made = {
        "ready": add_job(conn, queue="emails", task="t.send", args={"customer_id": 42}),
        "doing": add_job(conn, queue="emails", final_status="doing"),
        "succeeded": add_job(conn, queue="reports", final_status="succeeded"),
        "failed": add_job(conn, queue="reports", task="t.build", final_status="failed"),
        "cancelled": add_job(conn, final_status="cancelled"),
        "aborted": add_job(conn, final_status="doing"),
    }
    conn.execute(
        "UPDATE procrastinate_jobs SET status = 'aborted' WHERE id = %s", (made["aborted"],)
    )
    made["scheduled"] = add_job(conn, queue="emails")
    conn.execute(
        "UPDATE procrastinate_jobs SET scheduled_at = now() + interval '1 hour' WHERE id = %s",
        (made["scheduled"],),
    )
    made["abort_requested"] = add_job(conn, final_status="doing")
    conn.execute(
        "UPDATE procrastinate_jobs SET abort_requested = true WHERE id = %s",
        (made["abort_requested"],),
    )
    return made


def test_each_state_lists_its_jobs_and_counts_add_up(conn, every_state):
    for state in STATES:
        page = load_jobs_page(conn, JobFilter(state=state))
        assert ids_of(page) == [every_state[state]], state
        assert page.rows[0]["state"] == state
    counts = load_state_counts(conn)
    assert {s: counts.counts[s] for s in ("ready", "scheduled", "doing", "abort_requested",
                                          "failed")} == dict.fromkeys(
        ("ready", "scheduled", "doing", "abort_requested", "failed"), 1)  # fmt: skip
    assert counts.estimated == {"succeeded", "cancelled", "aborted"}
    assert counts.text("succeeded").startswith("≈ ")
    assert counts.text("ready") == "1"
    add_job(conn)
    add_job(conn)  # 6 open jobs, 3 of them ready
    assert load_state_counts(conn, cap=6).text("ready") == "3"
    assert load_state_counts(conn, cap=5).text("ready") == "3+"  # the oldest 6: lower bounds
    add_job(conn)
    assert load_state_counts(conn, cap=5).text("ready") == "3+"  # the 7th is past them
    assert load_state_counts(conn, cap=0).text("failed") == "1"  # the ledger, never capped


def test_filters(conn, every_state):
    e = every_state
    cases = {
        JobFilter(queue="emails"): [e["scheduled"], e["doing"], e["ready"]],
        JobFilter(task="t.build"): [e["failed"]],
        JobFilter(ids=(e["ready"], e["failed"], 999_999)): [e["failed"], e["ready"]],
        JobFilter(args='{"customer_id":42}'): [e["ready"]],
        JobFilter(state="failed", queue="reports"): [e["failed"]],
        JobFilter(state="ready", queue="reports"): [],
    }
    for job_filter, expected in cases.items():
        found = ids_of(load_jobs_page(conn, job_filter))
        assert found == sorted(expected, reverse=True), job_filter


def test_lock_queueing_lock_priority_worker_and_time_filters(conn):
    worker = add_worker(conn, "w", 1)
    a = add_job(conn, final_status="doing")
    b = add_job(conn)
    c = add_job(conn, final_status="succeeded")
    conn.execute(
        "UPDATE procrastinate_jobs SET lock = 'L', worker_id = %s, priority = 5 WHERE id = %s",
        (worker, a),
    )
    conn.execute(
        "UPDATE procrastinate_jobs SET lock = 'L', queueing_lock = 'Q' WHERE id = %s", (b,)
    )
    conn.execute("UPDATE procrastinate_jobs SET lock = 'L' WHERE id = %s", (c,))
    assert ids_of(load_jobs_page(conn, JobFilter(lock="L"))) == [c, b, a]
    assert ids_of(load_jobs_page(conn, JobFilter(lock="L", state="doing"))) == [a]
    assert ids_of(load_jobs_page(conn, JobFilter(queueing_lock="Q", state="ready"))) == [b]
    assert ids_of(load_jobs_page(conn, JobFilter(worker=worker, state="doing"))) == [a]
    assert ids_of(load_jobs_page(conn, JobFilter(priority_min=1, priority_max=9))) == [a]
    now = datetime.now(UTC)
    assert ids_of(load_jobs_page(conn, JobFilter(finished_since=now - timedelta(hours=1)))) == [c]
    assert ids_of(load_jobs_page(conn, JobFilter(deferred_since=now + timedelta(hours=1)))) == []
    assert len(load_jobs_page(conn, JobFilter(deferred_until=now + timedelta(hours=1))).rows) == 3


def test_keyset_pages_newest_first_without_gaps_or_repeats(conn):
    made = [add_job(conn, final_status="succeeded") for _ in range(7)]
    seen, before = [], None
    while True:
        page = load_jobs_page(conn, JobFilter(state="succeeded"), limit=3, before=before)
        seen += ids_of(page)
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == sorted(made, reverse=True)


def test_a_filter_no_index_serves_searches_the_newest_n_and_goes_on(conn):
    old = add_job(conn, args={"customer_id": 7}, final_status="succeeded")
    for _ in range(6):
        add_job(conn, final_status="succeeded")
    job_filter = JobFilter(args='{"customer_id":7}')
    page = load_jobs_page(conn, job_filter, scan=4)
    assert page.rows == []
    assert page.searched.count == 4 and not page.searched.complete
    assert page.searched.walks == "jobs"
    # "Older »" searches on from where the first page stopped.
    older = load_jobs_page(conn, job_filter, before=page.next_before, scan=4)
    assert ids_of(older) == [old] and older.searched.complete and older.next_before is None
    count = count_jobs(conn, job_filter, scan=4)
    assert not count.exact and count.searched == 4 and count.estimate is not None
    assert "of the newest 4 jobs searched" in count.text() and count.text().startswith("≈ ")
    assert count_jobs(conn, job_filter, scan=100).text() == "1 job matches the filter"


def test_plans_use_what_procrastinates_indexes_give():
    assert search_plan(JobFilter(state="ready", task="t")).driver == ("state:open",)
    assert search_plan(JobFilter(state="ready", task="t")).residual == ("state:ready", "task")
    assert search_plan(JobFilter(state="ready", queue="q")).residual == ("state:ready", "queue")
    assert search_plan(JobFilter(state="failed")).walks == "failed jobs"
    assert search_plan(JobFilter(state="succeeded")).driver == ()
    assert search_plan(JobFilter(queue="q"), small_queue=True).driver == ("queue",)
    assert search_plan(JobFilter(queue="q"), small_queue=False).residual == ("queue",)
    assert search_plan(JobFilter(lock="L", state="doing")).driver == ("state:open", "lock")
    assert search_plan(JobFilter(lock="L")).residual == ("lock",)
    assert search_plan(JobFilter(ids=(1, 2), args='{"a":1}')).driver == ("ids",)


def test_filter_from_the_url_and_back():
    params = {
        "state": "failed", "queue": "emails", "ids": "3, 2 #1", "args": "customer_id=42",
        "priority_min": "-1", "deferred_since": "2024-05-01", "deferred_until": "2024-05-02",
    }  # fmt: skip
    job_filter = JobFilter.from_query_params(params, DEFAULT_REDACT_ARGS)
    assert job_filter.ids == (3, 2, 1) and job_filter.args == '{"customer_id":42}'
    assert job_filter.deferred_until == datetime(2024, 5, 3, tzinfo=UTC)  # the whole day
    again = JobFilter.from_query_params(job_filter.to_query_params(), DEFAULT_REDACT_ARGS)
    assert again == job_filter
    for bad, message in [
        ({"state": "todo"}, "state: 'todo' is not one of"),
        ({"ids": "x"}, "ids: not a job id"),
        ({"priority_min": "2", "priority_max": "1"}, "priority_min must not be above"),
        ({"finished_since": "yesterday"}, "not an ISO 8601"),
        ({"args": "password=1"}, "redacted key"),
        ({"worker": "0"}, "worker: out of range"),
    ]:
        with pytest.raises(FilterError, match=message):
            JobFilter.from_query_params(bad, DEFAULT_REDACT_ARGS)
    with pytest.raises(FilterError, match="at most 1,000"):
        parse_ids(",".join(str(i) for i in range(1, 1002)))


def test_page_args_preview_is_short_text_and_redacted_even_when_too_big_to_ship(conn):
    add_job(conn, args={"note": "<script>alert(1)</script>", "token": "s3cr3t"})
    big = add_job(conn, args={"token": "s3cr3t"})
    # Args too big to ship whole (incompressible, > 16 KiB on disk): previewed from their text.
    conn.execute(
        "UPDATE procrastinate_jobs SET args = args || jsonb_build_object('zzzz_big', "
        "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 3000) g)) WHERE id = %s",
        (big,),
    )
    big_row, small_row = load_jobs_page(conn, JobFilter()).rows
    assert "s3cr3t" not in big_row["args"] and "••••" in big_row["args"]
    assert len(small_row["args"]) <= 100 and "<script>" in small_row["args"]
    assert "s3cr3t" not in small_row["args"]


def test_time_filters_bound_the_ids_searched(conn):
    made = [add_job(conn, final_status="succeeded") for _ in range(5)]
    for days, job_id in zip((5, 4, 3, 2, 1), made, strict=True):
        conn.execute(
            "UPDATE procrastinate_events SET at = now() - make_interval(days => %s)"
            " WHERE job_id = %s",
            (days, job_id),
        )
    now = datetime.now(UTC)
    job_filter = JobFilter(
        deferred_since=now - timedelta(days=4, hours=1),
        deferred_until=now - timedelta(days=2, hours=1),
    )
    assert jobs.id_bounds(conn, job_filter) == (made[1], made[3])
    page = load_jobs_page(conn, job_filter, scan=2)
    # Two ids in the bounds: the whole range is searched, even with a window of 2.
    assert ids_of(page) == [made[2], made[1]] and page.searched.complete
    assert jobs.first_id_deferred_at(conn, now + timedelta(days=1)) == made[-1] + 1
    finished = JobFilter(finished_until=now - timedelta(days=3, hours=1))
    assert ids_of(load_jobs_page(conn, finished)) == [made[1], made[0]]


def test_failed_jobs_of_a_queue_or_task_come_from_the_list_and_the_ledger(conn):
    """On the failed list, queue and task pick the candidates (checked before a job's row is
    read) and their count is the ledger's, exact."""
    plan = search_plan(JobFilter(state="failed", queue="q", task="t"))
    assert plan.driver == ("state:failed", "queue", "task") and plan.residual == ()
    assert "task" in search_plan(JobFilter(state="succeeded", task="t")).residual
    jobs = [
        add_job(conn, queue="reports", task=f"t.{i % 2}", final_status="failed") for i in range(5)
    ]
    add_job(conn, queue="other", task="t.0", final_status="failed")
    chosen = JobFilter(state="failed", queue="reports", task="t.0")
    assert [row["id"] for row in load_jobs_page(conn, chosen).rows] == [jobs[4], jobs[2], jobs[0]]
    # The search window counts this queue's and task's failed jobs only.
    window = load_jobs_page(conn, chosen, scan=2)
    assert [row["id"] for row in window.rows] == [jobs[4], jobs[2]]
    assert window.searched is not None and window.searched.count == 2
    assert count_jobs(conn, chosen).text() == "3 jobs match the filter"
    moved = JobFilter(state="failed", queue="other")
    assert [row["queue_name"] for row in load_jobs_page(conn, moved).rows] == ["other"]
