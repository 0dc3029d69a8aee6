"""A steady, varied stream of demo jobs: a few per second, bounded, stoppable.

    workload = Workload(app)           # an open jobdash.jobs.demo.app App (sync)
    workload.run(stop_event)           # until stop_event is set

Choosing a job is a pure function of a random generator (`choose_job`), so it is tested
without a database.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from procrastinate import App

logger = logging.getLogger(__name__)

DEMO = "jobdash.jobs.demo.app"

# Ready jobs above which the generator pauses: the demo never buries its own worker.
MAX_PENDING_JOBS = 300
PENDING_JOBS_SQL = "SELECT count(*) AS n FROM procrastinate_jobs WHERE status = 'todo'"


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
    if roll < 0.88:
        rows = 0 if rng.random() < 0.1 else rng.randint(100, 100_000)
        return JobSpec(f"{DEMO}.build_report", {"report": f"adhoc-{n}", "rows": rows})
    if roll < 0.96:
        # One-time jobs scheduled minutes to hours ahead.
        return JobSpec(
            f"{DEMO}.send_reminder", {"order_id": n}, schedule_in_s=rng.randint(60, 6 * 3600)
        )
    if roll < 0.985:
        return JobSpec(
            f"{DEMO}.resize_image", {"image_id": n, "width": 2048}, options={"priority": 10}
        )
    return JobSpec(f"{DEMO}.export_warehouse", {"tables": rng.randint(5, 40)})


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
    def __init__(
        self,
        app: App,
        *,
        jobs_per_second: float = 3.0,
        max_pending: int = MAX_PENDING_JOBS,
        max_jobs: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.app = app
        self.interval_s = 1.0 / jobs_per_second
        self.max_pending = max_pending
        self.max_jobs = max_jobs
        self.rng = random.Random(seed)
        self.deferred = 0

    def defer(self, spec: JobSpec) -> int:
        options = dict(spec.options)
        if spec.schedule_in_s is not None:
            options["schedule_in"] = {"seconds": spec.schedule_in_s}
        job_id = self.app.configure_task(spec.task_name, **options).defer(**spec.kwargs)
        self.deferred += 1
        return job_id

    def pending_jobs(self) -> int:
        row = self.app.connector.get_sync_connector().execute_query_one(PENDING_JOBS_SQL)
        return int(row["n"])

    def run(self, stop: threading.Event) -> None:
        """Defer jobs until `stop` is set or `max_jobs` are deferred. Errors are logged and
        the stream goes on (the database may be restarting)."""
        queue = first_jobs()
        while not stop.is_set() and (self.max_jobs is None or self.deferred < self.max_jobs):
            try:
                if queue:
                    self.defer(queue.pop(0))
                elif self.deferred % 20 == 0 and self.pending_jobs() > self.max_pending:
                    stop.wait(5)
                    continue
                else:
                    self.defer(choose_job(self.rng))
            except Exception:
                logger.warning("demo workload: could not defer a job", exc_info=True)
                stop.wait(2)
            # Jitter keeps the stream looking like traffic rather than a metronome.
            stop.wait(self.interval_s * self.rng.uniform(0.3, 1.7))
