"""Real PostgreSQL for every test: a template database built once per run, a fresh copy per test.

Server: JOBDASH_TEST_DATABASE_URL when set, else 127.0.0.1:5432 as user postgres if it answers,
else the embedded server (in a temporary folder).
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jobdash.core.schema import migrate

# The `dashboard` fixture (AppTest against a test database).
pytest_plugins = ["tests.dashboard_app"]

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PREFIX = "jobdash_t"
_counter = itertools.count()


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("select 1")
        return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def server_url() -> str:
    """A connection string to the maintenance database of the test server."""
    url = os.environ.get("JOBDASH_TEST_DATABASE_URL")
    if url:
        return url
    if _answers(LOCAL_SERVER):
        return LOCAL_SERVER
    from jobdash.core.embedded import start_embedded_server

    folder = Path(tempfile.mkdtemp(prefix="jobdash-test-pg-"))
    # Registered before the server starts, so it runs after the server's own exit hook has
    # stopped it (atexit is last-in, first-out).
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return start_embedded_server(folder / "pgdata")


def url_for(server_url: str, dbname: str) -> str:
    params = conninfo_to_dict(server_url)
    params["dbname"] = dbname
    return make_conninfo(**params)


def _admin(server_url: str) -> psycopg.Connection:
    return psycopg.connect(server_url, autocommit=True)


def _drop_statement(name: str) -> sql.Composed:
    return sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))


def _drop_leftovers(conn: psycopg.Connection) -> None:
    """Drop databases of earlier runs whose pytest process died without cleaning up."""
    rows = conn.execute(
        "select datname from pg_database where datname like %s", (PREFIX + "%",)
    ).fetchall()
    for (name,) in rows:
        pid = name.split("_")[2] if name.count("_") >= 2 else ""
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            conn.execute(
                _drop_statement(name)
            )


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    name = f"{PREFIX}_{os.getpid()}_template"
    with _admin(server_url) as conn:
        _drop_leftovers(conn)
        conn.execute(_drop_statement(name))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    migrate(url_for(server_url, name))
    yield name
    with _admin(server_url) as conn:
        conn.execute(_drop_statement(name))


def create_database_from_template(server_url: str, template: str) -> str:
    name = f"{PREFIX}_{os.getpid()}_{next(_counter)}"
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return name


def drop_database(server_url: str, name: str) -> None:
    with _admin(server_url) as conn:
        conn.execute(_drop_statement(name))


@pytest.fixture
def database_url(server_url: str, template_db: str) -> Iterator[str]:
    """A fresh, fully migrated database for this test; dropped afterwards."""
    name = create_database_from_template(server_url, template_db)
    yield url_for(server_url, name)
    drop_database(server_url, name)


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A fresh database with no schema at all."""
    name = f"{PREFIX}_{os.getpid()}_{next(_counter)}"
    with _admin(server_url) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    yield url_for(server_url, name)
    drop_database(server_url, name)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test's database."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection
