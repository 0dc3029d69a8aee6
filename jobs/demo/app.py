"""The demo Procrastinate App: an online shop's background jobs.

Queues `default`, `emails`, `reports`, `billing`; durations from milliseconds to a minute;
failures of several kinds. Permanent failures follow the arguments (like a payment
provider's test cards), transient ones are random and usually cured by a retry.
Long tasks are async so that a stopping worker can abort them at once.

`jobdash worker` runs this App by default (`--app jobdash.jobs.demo.app:app`).
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from typing import Any

from procrastinate import App, PsycopgConnector, RetryStrategy

QUEUES = ("default", "emails", "reports", "billing")

# Chance of a transient error (network, lock, timeout) on one attempt of a task that has one.
TRANSIENT_FAILURE_RATE = 0.08


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


# A callable conninfo is psycopg_pool's public way (3.3+) to give it when it is needed.
app = App(connector=PsycopgConnector(conninfo=demo_database_url))


def _work(min_s: float, max_s: float) -> None:
    time.sleep(random.uniform(min_s, max_s))


async def _work_async(min_s: float, max_s: float) -> None:
    await asyncio.sleep(random.uniform(min_s, max_s))


def _maybe_transient(error: BaseException) -> None:
    if random.random() < TRANSIENT_FAILURE_RATE:
        raise error


@app.task(queue="emails", retry=RetryStrategy(max_attempts=3, wait=2))
def send_welcome_email(user_id: int, email: str) -> str:
    _work(0.02, 0.3)
    if not email or "@" not in email:
        raise ValueError(f"invalid email address: {email!r}")
    _maybe_transient(TimeoutError("SMTP server did not answer within 10 s"))
    return f"sent to {email}"


@app.task(queue="emails", retry=RetryStrategy(max_attempts=2, wait=5))
async def send_newsletter_batch(batch: int, size: int) -> int:
    await _work_async(0.5, 4)
    _maybe_transient(ConnectionResetError("connection reset by mail relay"))
    return size


@app.task(queue="emails", retry=2)
def send_reminder(order_id: int) -> None:
    _work(0.01, 0.1)


@app.task(
    queue="billing",
    retry=RetryStrategy(max_attempts=4, exponential_wait=2, retry_exceptions=[TimeoutError]),
)
def charge_card(customer_id: int, amount_cents: int, card: str) -> dict[str, Any]:
    _work(0.1, 0.8)
    if card.endswith("0002"):
        raise PaymentDeclined(f"card ending {card[-4:]} declined: insufficient funds")
    _maybe_transient(TimeoutError("payment gateway timeout"))
    return {"customer": customer_id, "charged": amount_cents}


@app.task(queue="billing", retry=RetryStrategy(max_attempts=2, retry_exceptions=[TimeoutError]))
def refund_order(order_id: int, orders: dict[str, int] | None = None) -> int:
    _work(0.05, 0.4)
    known = orders or {}
    return known[str(order_id)]  # KeyError for an order we never saw: a permanent failure


@app.task(queue="reports", retry=RetryStrategy(max_attempts=2, wait=10))
async def build_report(report: str, rows: int) -> int:
    await _work_async(2, 20)
    if rows <= 0:
        raise ValueError(f"report {report!r} has no rows to aggregate")
    return rows


@app.task(queue="reports")
async def export_warehouse(tables: int) -> int:
    """The occasional long job."""
    await _work_async(30, 60)
    return tables


@app.task(queue="default", retry=RetryStrategy(max_attempts=5, linear_wait=1))
def sync_inventory(sku: str) -> None:
    _work(0.01, 0.2)
    _maybe_transient(InventoryLockTimeout(f"lock on {sku} held by another sync"))


@app.task(queue="default")
def resize_image(image_id: int, width: int, fmt: str = "jpeg") -> str:
    _work(0.005, 0.15)
    if fmt not in {"jpeg", "png", "webp"}:
        raise ValueError(f"unsupported image format: {fmt}")
    return f"{image_id}@{width}.{fmt}"


@app.periodic(cron="* * * * * */15")
@app.task(queue="default")
def heartbeat_ping(timestamp: int) -> int:
    return timestamp


@app.periodic(cron="* * * * *")
@app.task(queue="reports", queueing_lock="refresh_dashboard_cache")
async def refresh_dashboard_cache(timestamp: int) -> None:
    await _work_async(0.2, 2)


@app.periodic(cron="*/5 * * * *")
@app.task(queue="default")
def cleanup_sessions(timestamp: int) -> None:
    _work(0.1, 1)


@app.periodic(cron="0 * * * *", periodic_id="hourly", task_kwargs={"report": "hourly-sales"})
@app.periodic(cron="0 2 * * *", periodic_id="nightly", task_kwargs={"report": "daily-ledger"})
@app.task(queue="reports")
async def scheduled_report(timestamp: int, report: str) -> str:
    await _work_async(1, 5)
    return report
