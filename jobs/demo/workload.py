"""A steady, varied stream of demo jobs with an occasional burst: bounded, stoppable.

    workload = Workload(app)           # an open jobdash.jobs.demo.app App (sync)
    workload.run(stop_event)           # until stop_event is set

Sized for a healthy shop: at the default rate a worker of concurrency 4 is busy 50-80 % of
the time, and a burst (a newsletter sign-up wave every few minutes) fills the queue for a few
seconds, then drains (tests/test_demo_sizing.py measures both). Choosing a job is a pure
function of a random generator (`choose_job`, `burst_jobs`), tested without a database.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from procrastinate import App

logger = logging.getLogger(__name__)

DEMO = "shop"

# Jobs deferred per second at the default rate (`jobdash demo --rate`), for concurrency 4.
DEFAULT_RATE = 2.8
# The long job runs at most once in this many seconds (two at once would take half the worker).
LONG_JOB_GAP_S = 300.0
LONG_JOB = "shop.export_warehouse"
# A burst every this many seconds (uniform), of this many jobs (uniform).
BURST_EVERY_S = (120.0, 300.0)
BURST_SIZE = (25, 50)
# Ready jobs above which the generator pauses: the demo never buries its own worker (a
# demo run with a slower worker, or --rate too high, stops growing its backlog here).
MAX_PENDING_JOBS = 200
# Ready only: jobs scheduled for later are not a backlog.
PENDING_JOBS_SQL = """
SELECT count(*) AS n FROM procrastinate_jobs
 WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())
"""


@dataclass(frozen=True)
class JobSpec:
    task_name: str
    kwargs: dict[str, Any]
    schedule_in_s: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


def _card(rng: random.Random) -> str:
    # Like a payment provider's test cards: ...0002 is always declined.
    return "4000000000000002" if rng.random() < 0.12 else "4242424242424242"


def _email(rng: random.Random, user_id: int) -> str:
    return "" if rng.random() < 0.03 else f"user{user_id}@example.com"


def choose_job(rng: random.Random) -> JobSpec:
    """One job of the demo mix, with its arguments (weights roughly like a small shop)."""
    roll = rng.random()
    n = rng.randint(1, 99_999)
    if roll < 0.22:
        return JobSpec(f"{DEMO}.send_welcome_email", {"user_id": n, "email": _email(rng, n)})
    if roll < 0.40:
        return JobSpec(
            f"{DEMO}.resize_image",
            {
                "image_id": n,
                "width": rng.choice([64, 256, 1024]),
                "fmt": "tiff" if rng.random() < 0.07 else rng.choice(["jpeg", "png", "webp"]),
            },
        )
    if roll < 0.55:
        return JobSpec(
            f"{DEMO}.charge_card",
            {
                "customer_id": n,
                "amount_cents": rng.randint(199, 49_900),
                "card": _card(rng),
            },
        )
    if roll < 0.67:
        return JobSpec(f"{DEMO}.sync_inventory", {"sku": f"SKU-{n:05d}"})
    if roll < 0.74:
        orders = {str(n): rng.randint(100, 9_999)}
        order_id = n if rng.random() > 0.1 else n + 1  # an unknown order: KeyError
        return JobSpec(f"{DEMO}.refund_order", {"order_id": order_id, "orders": orders})
    if roll < 0.81:
        return JobSpec(f"{DEMO}.send_newsletter_batch", {"batch": n, "size": rng.randint(50, 500)})
    if roll < 0.86:
        rows = 0 if rng.random() < 0.1 else rng.randint(100, 100_000)
        return JobSpec(f"{DEMO}.build_report", {"report": f"adhoc-{n}", "rows": rows})
    if roll < 0.88:
        # One-time jobs scheduled minutes to an hour ahead (a few dozen waiting at a time).
        return JobSpec(
            f"{DEMO}.send_reminder", {"order_id": n}, schedule_in_s=rng.randint(60, 3600)
        )
    if roll < 0.9985:
        return JobSpec(
            f"{DEMO}.resize_image", {"image_id": n, "width": 2048}, options={"priority": 10}
        )
    # The rare long job: about one every five minutes at the default rate (see LONG_JOB_GAP_S).
    return JobSpec(f"{DEMO}.export_warehouse", {"tables": rng.randint(5, 40)})


def burst_jobs(rng: random.Random) -> list[JobSpec]:
    """A sign-up wave: welcome emails, first charges and avatar resizes, all at once."""
    jobs = []
    for _ in range(rng.randint(*BURST_SIZE)):
        n = rng.randint(1, 99_999)
        roll = rng.random()
        if roll < 0.5:
            jobs.append(
                JobSpec(f"{DEMO}.send_welcome_email", {"user_id": n, "email": _email(rng, n)})
            )
        elif roll < 0.75:
            jobs.append(JobSpec(f"{DEMO}.resize_image", {"image_id": n, "width": 256}))
        else:
            jobs.append(
                JobSpec(
                    f"{DEMO}.charge_card",
                    {"customer_id": n, "amount_cents": rng.randint(199, 4_900), "card": _card(rng)},
                )
            )
    return jobs


def first_jobs() -> list[JobSpec]:
    """A known opening burst: the dashboard shows successes, failures and retries at once."""
    return [
        JobSpec(f"{DEMO}.resize_image", {"image_id": 1, "width": 256}),
        JobSpec(f"{DEMO}.resize_image", {"image_id": 2, "width": 256, "fmt": "bmp"}),
        JobSpec(
            f"{DEMO}.charge_card",
            {"customer_id": 7, "amount_cents": 1_999, "card": "4000000000000002"},
        ),
        JobSpec(f"{DEMO}.send_welcome_email", {"user_id": 3, "email": "not-an-address"}),
        JobSpec(f"{DEMO}.send_reminder", {"order_id": 42}, schedule_in_s=15 * 60),
    ]


class Workload:
    """Defers `jobs_per_second` jobs (jittered) and a burst every BURST_EVERY_S. `time_scale`
    runs it that many times faster: more jobs per second, bursts more often (tests pair it
    with the App's TIME_SCALE, so the worker's load is the same)."""

    def __init__(
        self,
        app: App,
        *,
        jobs_per_second: float = DEFAULT_RATE,
        max_pending: int = MAX_PENDING_JOBS,
        max_jobs: int | None = None,
        seed: int | None = None,
        time_scale: float = 1.0,
        bursts: bool = True,
    ) -> None:
        self.app = app
        self.interval_s = 1.0 / (jobs_per_second * time_scale)
        self.time_scale = time_scale
        self.max_pending = max_pending
        self.max_jobs = max_jobs
        self.rng = random.Random(seed)
        self.bursts = bursts
        self.deferred = 0
        self.bursts_deferred = 0
        self.long_job_at = float("-inf")

    def defer(self, spec: JobSpec) -> int:
        options = dict(spec.options)
        if spec.schedule_in_s is not None:
            options["schedule_in"] = {"seconds": spec.schedule_in_s}
        job_id = self.app.configure_task(spec.task_name, **options).defer(**spec.kwargs)
        self.deferred += 1
        return job_id

    def pending_jobs(self) -> int:
        """Ready jobs (not those scheduled for later)."""
        row = self.app.connector.get_sync_connector().execute_query_one(PENDING_JOBS_SQL)
        return int(row["n"])

    def _next_burst_at(self) -> float:
        return time.monotonic() + self.rng.uniform(*BURST_EVERY_S) / self.time_scale

    def _next_job(self) -> JobSpec:
        spec = choose_job(self.rng)
        if spec.task_name == LONG_JOB:
            now = time.monotonic()
            if now - self.long_job_at < LONG_JOB_GAP_S / self.time_scale:
                return choose_job(self.rng)  # (another long one right away: vanishingly rare)
            self.long_job_at = now
        return spec

    def run(self, stop: threading.Event) -> None:
        """Defer jobs until `stop` is set or `max_jobs` are deferred. Errors are logged and
        the stream goes on (the database may be restarting)."""
        queue = first_jobs()
        burst_at = self._next_burst_at()
        while not stop.is_set() and (self.max_jobs is None or self.deferred < self.max_jobs):
            try:
                if queue:
                    self.defer(queue.pop(0))
                    continue
                if self.deferred % 20 == 0 and self.pending_jobs() > self.max_pending:
                    stop.wait(5 / self.time_scale)
                    continue
                if self.bursts and time.monotonic() >= burst_at:
                    queue = burst_jobs(self.rng)
                    self.bursts_deferred += 1
                    burst_at = self._next_burst_at()
                    continue
                self.defer(self._next_job())
            except Exception:
                logger.warning("demo workload: could not defer a job", exc_info=True)
                stop.wait(2)
            # Jitter keeps the stream looking like traffic rather than a metronome.
            stop.wait(self.interval_s * self.rng.uniform(0.3, 1.7))
