"""The Procrastinate App the outage tests run, in `jobdash worker --app tests.outage_app:app`
and in Procrastinate's own `procrastinate --app tests.outage_app.app worker`.

Its connector reads OUTAGE_TEST_DATABASE_URL (`jobdash worker` replaces it anyway)."""

from __future__ import annotations

import asyncio
import os

from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector(conninfo=os.environ.get("OUTAGE_TEST_DATABASE_URL", "")))


@app.task(name="nap")
async def nap(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds
