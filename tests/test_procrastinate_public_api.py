"""Jobdash reaches Procrastinate only through its public API (issue 9 §4): the maintenance
task finds the worker's database through the connector's public `pool`, the demo App gives
its database lazily through psycopg_pool's callable conninfo."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from procrastinate import App, PsycopgConnector, SyncPsycopgConnector
from psycopg.conninfo import conninfo_to_dict

from jobdash.jobs.demo import app as demo
from jobdash.jobs.maintenance.task import _connection_string
from tests.test_instrumentation_support import run_async

ROOT = Path(__file__).resolve().parent.parent
PRIVATE_PROCRASTINATE = re.compile(r"_async_pool\b|\b_pool\b|_pool_args|_resolve_conninfo")


def dbname(conninfo: str) -> str | None:
    return conninfo_to_dict(conninfo).get("dbname")


def test_no_private_attributes_of_procrastinate_objects():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("app", "core", "jobs")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PRIVATE_PROCRASTINATE.search(line)
    ]
    assert offenders == []


def test_maintenance_task_finds_the_workers_database_from_an_open_async_connector(database_url):
    async def conninfo_seen_by_task() -> str:
        app = App(connector=PsycopgConnector(conninfo=database_url, min_size=1, max_size=1))
        async with app.open_async():
            return _connection_string(SimpleNamespace(app=app))

    assert dbname(run_async(conninfo_seen_by_task())) == dbname(database_url)


def test_maintenance_task_reads_a_callable_conninfo_and_a_sync_connector(database_url):
    app = App(connector=SyncPsycopgConnector(conninfo=lambda: database_url, min_size=1))
    with app.open():
        assert dbname(_connection_string(SimpleNamespace(app=app))) == dbname(database_url)


def test_maintenance_task_falls_back_to_settings_when_not_open(monkeypatch, database_url):
    monkeypatch.setenv("JOBDASH_DATABASE_URL", database_url)
    app = App(connector=PsycopgConnector(conninfo="dbname=elsewhere"))
    assert dbname(_connection_string(SimpleNamespace(app=app))) == dbname(database_url)


def test_demo_app_connects_lazily_to_jobdashs_database(monkeypatch, database_url):
    monkeypatch.setenv("JOBDASH_DATABASE_URL", database_url)
    demo.demo_database_url.cache_clear()
    assert demo.demo_database_url.cache_info().currsize == 0  # nothing resolved by importing
    query = "SELECT current_database() AS name"

    async def database_of_open_app() -> str:
        async with demo.app.open_async():
            [row] = await demo.app.connector.execute_query_all_async(query)
            return row["name"]

    assert run_async(database_of_open_app()) == dbname(database_url)
    # Used synchronously before being opened, Procrastinate makes a sync connector with the
    # same (callable) conninfo.
    sync = demo.app.connector.get_sync_connector()
    sync.open()
    try:
        assert sync.execute_query_all(query)[0]["name"] == dbname(database_url)
    finally:
        sync.close()
    demo.demo_database_url.cache_clear()
