""""Why isn't this job running?": the rule on crafted facts, one case per reason, then the
facts as the loader gathers them from a real database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from jobdash.app.actions import controls
from jobdash.app.read.job_facts import load_job_view
from jobdash.app.rules.why_waiting import WaitFacts, explain
from tests.actions_helpers import as_operator
from tests.dashboard_data import add_job, add_worker

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# A ready job on a queue one idle instrumented worker listens to: nothing keeps it waiting.
BASE = WaitFacts(
    state="ready", queue="emails", now=NOW, live_workers=1, listening_workers=1,
    honouring_workers=1, busy_jobs=0, total_slots=4,
)  # fmt: skip


def test_not_waiting_states_have_no_reason():
    for state in ("doing", "abort_requested", "succeeded", "failed", "cancelled", "aborted"):
        assert explain(replace(BASE, state=state)) is None


def test_scheduled_for_later():
    line = explain(replace(BASE, state="scheduled", scheduled_at=NOW + timedelta(hours=3)))
    assert line == "Scheduled for later: it runs at 2024-05-01T15:00:00+00:00 (in 3 hours)."


def test_queue_paused_and_who_may_still_take_it():
    paused = replace(BASE, queue_paused_at=NOW - timedelta(minutes=5), queue_paused_by="alice")
    assert explain(paused) == (
        "Its queue 'emails' is paused (since 2024-05-01T11:55:00+00:00 (5 min ago) by alice): "
        "instrumented workers take none of its jobs."
    )
    mixed = replace(paused, listening_workers=2, honouring_workers=1, unknown_workers=1)
    assert explain(mixed).endswith("2 worker(s) that do not honour pauses may still take it.")


def test_no_worker_at_all():
    assert explain(replace(BASE, live_workers=0, listening_workers=0)) == (
        "No worker is running (no worker has sent a heartbeat recently)."
    )


def test_no_worker_on_its_queue():
    assert explain(replace(BASE, live_workers=2, listening_workers=0)) == (
        "No worker listens to queue 'emails' (2 worker(s) run, on other queues)."
    )
    unknown = replace(BASE, live_workers=1, listening_workers=0, unknown_workers=1)
    assert "1 uninstrumented worker(s) run, their queues unknown" in explain(unknown)


def test_waiting_for_a_lock_held_by_a_running_job():
    facts = replace(
        BASE, lock="customer-42", lock_holder_id=77,
        lock_holder_started_at=NOW - timedelta(hours=3),
    )  # fmt: skip
    assert explain(facts) == "Waiting for lock 'customer-42' held by job 77 (running for 3 h)."


def test_waiting_for_a_lock_another_waiting_job_takes_first():
    facts = replace(BASE, lock="customer-42", lock_first_id=70)
    assert explain(facts) == "Waiting for lock 'customer-42': job 70 goes first (same lock)."


def test_all_workers_of_its_queue_busy():
    facts = replace(BASE, busy_jobs=4, total_slots=4, ahead=12)
    assert explain(facts) == (
        "All 1 worker(s) of queue 'emails' are busy (4 of 4 slots); 12 job(s) are ahead of it."
    )
    # Slots of uninstrumented workers are unknown: not claimed busy.
    assert "busy" not in explain(replace(facts, unknown_workers=1))


def test_behind_jobs_of_higher_priority():
    facts = replace(BASE, ahead=10_000, ahead_capped=True)
    assert explain(facts) == (
        "Behind 10,000+ job(s) of queue 'emails' that go first (higher priority, or the same "
        "priority and deferred earlier)."
    )


def test_nothing_known():
    assert explain(BASE).startswith("Nothing the database knows keeps it waiting")


def test_loader_gathers_the_facts(conn):
    add_worker(conn, "web-1", 4101)  # instrumented, every queue, concurrency 4, idle
    first = add_job(conn, queue="emails")
    second = add_job(conn, queue="emails")
    assert "Behind 1 job(s)" in load_job_view(conn, second).why_waiting

    holder = add_job(conn, queue="emails", final_status="doing")
    conn.execute("UPDATE procrastinate_jobs SET lock = 'k' WHERE id = ANY(%s)", ([holder, second],))
    view = load_job_view(conn, second)
    assert view.state == "ready"
    assert view.why_waiting.startswith(f"Waiting for lock 'k' held by job {holder} (running for")

    controls.pause_queue(conn, "emails", as_operator("alice"))
    assert "is paused" in load_job_view(conn, first).why_waiting

    other = add_job(conn, queue="reports")
    conn.execute(
        "UPDATE jobdash_workers SET queues = '{emails}' WHERE hostname = 'web-1'"
    )
    assert load_job_view(conn, other).why_waiting.startswith("No worker listens to queue 'reports'")
    assert load_job_view(conn, holder).why_waiting is None
