"""The demo Procrastinate App: an online shop's background jobs, named `shop.*`.

Queues `default`, `emails`, `reports`, `billing`; durations from milliseconds to a minute;
failures of several kinds. Permanent failures follow the arguments (like a payment
provider's test cards), transient ones are random and usually cured by a retry.
Long tasks are async so that a stopping worker can abort them at once.

Each task spends its time through `_work` / `_work_async`, so the same code can run faster
(`TIME_SCALE`, for tests of the demo's sizing) or not sleep at all (`dry_run`, for the history
`jobdash demo` makes up: see jobs/demo/simulate.py).

`jobdash worker` runs this App by default (`--app jobdash.jobs.demo.app:app`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from procrastinate import App, PsycopgConnector, RetryStrategy

QUEUES = ("default", "emails", "reports", "billing")
TASK_PREFIX = "shop."

# Chance of a transient error (network, lock, timeout) on one attempt of a task that has one.
TRANSIENT_FAILURE_RATE = 0.06
# Tasks sleep their duration divided by this (tests run the demo faster than real time).
TIME_SCALE = 1.0


@functools.cache
def demo_database_url() -> str:
    """Jobdash's database, found when the App first connects, not at import: importing this
    module never starts a server. `jobdash worker` replaces the connector anyway."""
    from jobdash.core.database import resolve_database_url
    from jobdash.core.settings import load_settings

    return resolve_database_url(load_settings())


class PaymentDeclined(Exception):
    """The card issuer refused the charge: retrying does not help."""


class InventoryLockTimeout(TimeoutError):
    """The warehouse system was busy; worth another try."""


@dataclass
class DryRun:
    """One attempt run without sleeping: the seconds it would have spent, drawn from `rng`."""

    rng: random.Random
    transient_failure_rate: float | None = None  # instead of TRANSIENT_FAILURE_RATE
    seconds: float = 0.0


_dry_run: ContextVar[DryRun | None] = ContextVar("demo_dry_run", default=None)


@contextlib.contextmanager
def dry_run(rng: random.Random, transient_failure_rate: float | None = None) -> Iterator[DryRun]:
    """Tasks called inside this block do not sleep and draw their randomness from `rng`."""
    run = DryRun(rng, transient_failure_rate)
    token = _dry_run.set(run)
    try:
        yield run
    finally:
        _dry_run.reset(token)


def _random() -> random.Random | Any:
    run = _dry_run.get()
    return run.rng if run is not None else random


def _duration(min_s: float, max_s: float) -> float:
    seconds = _random().uniform(min_s, max_s)
    run = _dry_run.get()
    if run is None:
        return seconds / TIME_SCALE
    run.seconds += seconds
    return 0.0


def _work(min_s: float, max_s: float) -> None:
    if seconds := _duration(min_s, max_s):
        time.sleep(seconds)


async def _work_async(min_s: float, max_s: float) -> None:
    if seconds := _duration(min_s, max_s):
        await asyncio.sleep(seconds)


def _maybe_transient(error: BaseException) -> None:
    run = _dry_run.get()
    rate = TRANSIENT_FAILURE_RATE
    if run is not None and run.transient_failure_rate is not None:
        rate = run.transient_failure_rate
    if _random().random() < rate:
        raise error


# A callable conninfo is psycopg_pool's public way (3.3+) to give it when it is needed.
app = App(connector=PsycopgConnector(conninfo=demo_database_url))


@app.task(
    name="shop.send_welcome_email", queue="emails", retry=RetryStrategy(max_attempts=3, wait=2)
)
def send_welcome_email(user_id: int, email: str) -> str:
    _work(0.05, 0.4)
    if not email or "@" not in email:
        raise ValueError(f"invalid email address: {email!r}")
    _maybe_transient(TimeoutError("SMTP server did not answer within 10 s"))
    return f"sent to {email}"


@app.task(
    name="shop.send_newsletter_batch", queue="emails", retry=RetryStrategy(max_attempts=2, wait=5)
)
async def send_newsletter_batch(batch: int, size: int) -> int:
    await _work_async(1, 5)
    _maybe_transient(ConnectionResetError("connection reset by mail relay"))
    return size


@app.task(name="shop.send_reminder", queue="emails", retry=2)
def send_reminder(order_id: int) -> None:
    _work(0.02, 0.1)


@app.task(
    name="shop.charge_card",
    queue="billing",
    retry=RetryStrategy(max_attempts=4, exponential_wait=2, retry_exceptions=[TimeoutError]),
)
def charge_card(customer_id: int, amount_cents: int, card: str) -> dict[str, Any]:
    _work(0.2, 1.0)
    if card.endswith("0002"):
        raise PaymentDeclined(f"card ending {card[-4:]} declined: insufficient funds")
    _maybe_transient(TimeoutError("payment gateway timeout"))
    return {"customer": customer_id, "charged": amount_cents}


@app.task(
    name="shop.refund_order",
    queue="billing",
    retry=RetryStrategy(max_attempts=2, retry_exceptions=[TimeoutError]),
)
def refund_order(order_id: int, orders: dict[str, int] | None = None) -> int:
    _work(0.1, 0.6)
    known = orders or {}
    return known[str(order_id)]  # KeyError for an order we never saw: a permanent failure


@app.task(name="shop.build_report", queue="reports", retry=RetryStrategy(max_attempts=2, wait=10))
async def build_report(report: str, rows: int) -> int:
    await _work_async(2, 8)
    if rows <= 0:
        raise ValueError(f"report {report!r} has no rows to aggregate")
    return rows


@app.task(name="shop.export_warehouse", queue="reports")
async def export_warehouse(tables: int) -> int:
    """The rare long job."""
    await _work_async(40, 90)
    return tables


@app.task(
    name="shop.sync_inventory", queue="default", retry=RetryStrategy(max_attempts=5, linear_wait=1)
)
def sync_inventory(sku: str) -> None:
    _work(0.05, 0.3)
    _maybe_transient(InventoryLockTimeout(f"lock on {sku} held by another sync"))


@app.task(name="shop.resize_image", queue="default")
def resize_image(image_id: int, width: int, fmt: str = "jpeg") -> str:
    _work(0.02, 0.25)
    if fmt not in {"jpeg", "png", "webp"}:
        raise ValueError(f"unsupported image format: {fmt}")
    return f"{image_id}@{width}.{fmt}"


@app.periodic(cron="* * * * * */15")
@app.task(name="shop.heartbeat_ping", queue="default")
def heartbeat_ping(timestamp: int) -> int:
    return timestamp


@app.periodic(cron="* * * * *")
@app.task(
    name="shop.refresh_dashboard_cache", queue="reports", queueing_lock="refresh_dashboard_cache"
)
async def refresh_dashboard_cache(timestamp: int) -> None:
    await _work_async(0.2, 2)


@app.periodic(cron="*/5 * * * *")
@app.task(name="shop.cleanup_sessions", queue="default")
def cleanup_sessions(timestamp: int) -> None:
    _work(0.1, 1)


@app.task(name="shop.scheduled_report", queue="reports")
async def scheduled_report(timestamp: int, report: str) -> str:
    await _work_async(1, 5)
    return report


# Two schedules of one task, each applied to the task itself: the types of Procrastinate's
# decorator take the timestamp parameter off the task they return, so they do not stack.
app.periodic(cron="0 2 * * *", periodic_id="nightly", task_kwargs={"report": "daily-ledger"})(
    scheduled_report
)
app.periodic(cron="0 * * * *", periodic_id="hourly", task_kwargs={"report": "hourly-sales"})(
    scheduled_report
)
