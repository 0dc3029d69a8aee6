"""The dashboard's connections: one bounded pool per database per process, shared by every
session and every route of the process.

The pools live in this module, not in a Streamlit cache: anything a browser can clear (a
`clear_cache` message) would drop a pool without closing it and leak its connections. So the
number of connections a dashboard process holds is at most JOBDASH_POOL_SIZE, whatever clients
send. Connections are autocommit (reads never hold a transaction open), read times in UTC and
carry the statement timeout, so one slow query cannot pin a panel or the database.

When the pool has no connection to give, one direct attempt tells why (unreachable, refused,
authentication, or busy). A database that answers again while the pool is still backing off
from its failed reconnects gets a fresh pool at once, so panels recover on their next tick.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from jobdash.core.database import check_connection, connection_kwargs, describe
from jobdash.core.errors import DatabaseError, DatabaseNotConfigured, DatabaseUnavailable
from jobdash.core.settings import load_settings
from jobdash.core.settings import read_database_url as read_database_url_setting

CONNECT_TIMEOUT_S = 3
# How long a caller waits for a pooled connection before giving up (database down, pool busy).
POOL_WAIT_S = 3.0
# Server-side bound on a connection left idle inside a transaction (a stalled CSV download).
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
APPLICATION_NAME = "jobdash-dashboard"


class _Unreachable:
    """When each database last failed to give a connection, so other callers fail fast.

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

    def clear(self, url: str | None = None) -> None:
        with self._lock:
            if url is None:
                self._since.clear()
            else:
                self._since.pop(url, None)


UNREACHABLE = _Unreachable()
_LOCK = threading.Lock()
_POOLS: dict[tuple[str, int, int], ConnectionPool] = {}


def _new_pool(url: str, statement_timeout_ms: int, max_size: int) -> ConnectionPool:
    kwargs = connection_kwargs(
        statement_timeout_ms=statement_timeout_ms,
        application_name=APPLICATION_NAME,
        connect_timeout_s=CONNECT_TIMEOUT_S,
    )
    kwargs["options"] += f" -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
    # open=True without wait: a database that is down at start must not block or break the
    # page; the pool keeps trying in the background and callers report "unavailable".
    return ConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        kwargs=kwargs,
        # After a database restart pooled connections are dead: check before handing one out.
        check=ConnectionPool.check_connection,
        timeout=POOL_WAIT_S,
        reconnect_timeout=60,
        name=APPLICATION_NAME,
        open=True,
    )


def _key(url: str) -> tuple[str, int, int]:
    settings = load_settings()
    return (url, settings.statement_timeout_ms, settings.pool_size)


def get_pool(database_url: str | None = None) -> ConnectionPool:
    """The process's pool for this database (created on first use)."""
    key = _key(database_url or configured_database_url())
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = _new_pool(*key)
        return pool


def _replace_pool(key: tuple[str, int, int], stale: ConnectionPool) -> None:
    """Swap in a fresh pool (the old one is closed: connections in use close when returned)."""
    with _LOCK:
        if _POOLS.get(key) is stale:
            _POOLS[key] = _new_pool(*key)
    stale.close(timeout=0)


def close_pools() -> None:
    """Close every pool of this process (tests, whose databases are dropped after each test)."""
    with _LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()
    UNREACHABLE.clear()


def pool_connection_count() -> int:
    """Connections the process's pools hold now (for tests and the health route)."""
    with _LOCK:
        pools = list(_POOLS.values())
    return sum(pool.get_stats().get("pool_size", 0) for pool in pools)


def configured_database_url() -> str:
    url = load_settings().database_url
    if not url:
        raise DatabaseNotConfigured(
            "No database configured: set JOBDASH_DATABASE_URL, or start the dashboard "
            "with `jobdash serve`."
        )
    return url


def read_database_url() -> str:
    """Where loaders read: JOBDASH_READ_DATABASE_URL (a replica) when set, else the primary.
    Actions always write through `configured_database_url()`."""
    return read_database_url_setting() or configured_database_url()


def _why_no_connection(url: str, pool: ConnectionPool) -> tuple[str, bool]:
    """Why the pool gave nothing (it only says "timeout"), from one direct attempt; and
    whether callers should back off for a moment (False once a fresh pool is in place)."""
    try:
        check_connection(url, timeout_s=CONNECT_TIMEOUT_S)
    except DatabaseError as exc:
        return f"database unreachable ({exc})", True
    stats = pool.get_stats()
    if stats.get("pool_size", 0) >= pool.max_size and stats.get("pool_available", 0) == 0:
        return f"all {pool.max_size} connections to {describe(url)} are busy", True
    # It answers, yet the pool has nothing: it is still backing off after an outage.
    _replace_pool(_key(url), pool)
    return f"database {describe(url)} is answering again: reconnecting", False


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
        reason, back_off = _why_no_connection(url, pool)
        if back_off:
            UNREACHABLE.record(url, reason)
        raise DatabaseUnavailable(reason) from None
    UNREACHABLE.clear(url)
    try:
        yield conn
    finally:
        # The pool discards a broken connection and replaces it in the background.
        pool.putconn(conn)
