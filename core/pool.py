"""The dashboard's database access: one connection pool per process, shared by every session.

Connections are autocommit (dashboard reads never hold a transaction open), read times in
UTC and carry a statement timeout so one slow query cannot pin a panel or the database.
Pages get a connection with `with connection() as conn:`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import streamlit as st
from psycopg_pool import ConnectionPool, PoolTimeout

from jobdash.core.database import DatabaseError, check_connection, describe
from jobdash.core.settings import load_settings

CONNECT_TIMEOUT_S = 3
# How long a page waits for a pooled connection before giving up (database down, pool busy).
POOL_WAIT_S = 3.0
POOL_MAX_SIZE = 4


class DatabaseNotConfigured(Exception):
    """No database URL was given to the dashboard."""


class DatabaseUnavailable(Exception):
    """The database did not answer in time; the message is one line, without credentials."""


class _Unreachable:
    """When each database last failed to give a connection, so other panels fail fast.

    Without it, every panel of a page would wait POOL_WAIT_S in turn while the database is
    down (panels of one session run one after another).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: dict[str, tuple[float, str]] = {}

    def recent(self, url: str, within_s: float) -> str | None:
        with self._lock:
            entry = self._since.get(url)
        if entry and time.monotonic() - entry[0] < within_s:
            return entry[1]
        return None

    def record(self, url: str, reason: str) -> None:
        with self._lock:
            self._since[url] = (time.monotonic(), reason)

    def clear(self, url: str) -> None:
        with self._lock:
            self._since.pop(url, None)

    def clear_all(self) -> None:
        with self._lock:
            self._since.clear()


UNREACHABLE = _Unreachable()


def connection_options(statement_timeout_ms: int) -> str:
    return f"-c statement_timeout={int(statement_timeout_ms)} -c timezone=UTC"


_OPEN_POOLS: list[ConnectionPool] = []


@st.cache_resource(show_spinner=False)
def _pool(database_url: str, statement_timeout_ms: int) -> ConnectionPool:
    # open=True without wait: a database that is down at start must not block or break the
    # page; the pool keeps trying in the background and panels report "unavailable".
    pool = ConnectionPool(
        database_url,
        min_size=1,
        max_size=POOL_MAX_SIZE,
        kwargs={
            "autocommit": True,
            "connect_timeout": CONNECT_TIMEOUT_S,
            "options": connection_options(statement_timeout_ms),
            "application_name": "jobdash-dashboard",
        },
        # After a database restart pooled connections are dead: check before handing one out.
        check=ConnectionPool.check_connection,
        timeout=POOL_WAIT_S,
        reconnect_timeout=60,
        name="jobdash-dashboard",
        open=True,
    )
    _OPEN_POOLS.append(pool)
    return pool


def close_pools() -> None:
    """Close every pool of this process (tests, whose databases are dropped after each test)."""
    _pool.clear()
    while _OPEN_POOLS:
        _OPEN_POOLS.pop().close()


def _why_no_connection(url: str) -> str:
    """The pool only says "timeout": one direct attempt tells refused, unknown host, auth..."""
    try:
        check_connection(url, timeout_s=CONNECT_TIMEOUT_S)
    except DatabaseError as exc:
        return str(exc)
    return f"no free connection to {describe(url)} within {POOL_WAIT_S:g} s (pool busy)"


def configured_database_url() -> str:
    url = load_settings().database_url
    if not url:
        raise DatabaseNotConfigured(
            "No database configured: set JOBDASH_DATABASE_URL, or start the dashboard "
            "with `jobdash serve`."
        )
    return url


def get_pool(database_url: str | None = None) -> ConnectionPool:
    settings = load_settings()
    url = database_url or configured_database_url()
    return _pool(url, settings.statement_timeout_ms)


@contextmanager
def connection(database_url: str | None = None) -> Iterator[psycopg.Connection]:
    """A pooled autocommit connection (UTC, statement timeout); returned to the pool after use.

    Raises DatabaseUnavailable when no connection can be had within a few seconds.
    """
    url = database_url or configured_database_url()
    recent_failure = UNREACHABLE.recent(url, within_s=POOL_WAIT_S)
    if recent_failure:
        raise DatabaseUnavailable(recent_failure)
    pool = get_pool(url)
    try:
        conn = pool.getconn()
    except PoolTimeout:
        reason = _why_no_connection(url)
        UNREACHABLE.record(url, reason)
        raise DatabaseUnavailable(reason) from None
    UNREACHABLE.clear(url)
    try:
        yield conn
    finally:
        # The pool discards a broken connection and replaces it in the background.
        pool.putconn(conn)
