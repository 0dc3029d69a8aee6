"""Issue 8 item 4: 110 slow readers of the export route held 80 connections idle in transaction
and starved the workers. Exports now read through the dashboard's pool, a bounded number at a
time (the next one gets 503 at once), and a client that stops reading loses its export: the
connection goes back to the pool."""

from __future__ import annotations

import csv
import io
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict

from jobdash.app.web.exports import ExportSlots, export_limit
from jobdash.core import pool
from jobdash.core.pool import APPLICATION_NAME
from jobdash.core.settings import load_settings
from tests.actions_helpers import make_failed_jobs
from tests.streamlit_process import http_get, open_stream, problems, run_script, texts

EXPORT = "/export/failed-jobs.csv"
# 8 MB of CSV in chunks of 1,000 rows: far more than the socket buffers of a client that does
# not read, so its export stops mid-way, inside the cursor's transaction.
JOBS = 8000
NOTE = "x" * 1000


def test_export_limit_leaves_a_connection_for_the_panels(monkeypatch) -> None:
    for pool_size, exports, expected in [(6, 2, 2), (3, 2, 2), (2, 2, 1), (1, 2, 1), (9, 20, 8)]:
        monkeypatch.setenv("JOBDASH_POOL_SIZE", str(pool_size))
        monkeypatch.setenv("JOBDASH_MAX_CONCURRENT_EXPORTS", str(exports))
        assert export_limit(load_settings()) == expected
    slots = ExportSlots()
    assert slots.try_acquire(2) and slots.try_acquire(2) and not slots.try_acquire(2)
    slots.release()
    assert slots.running == 1 and slots.try_acquire(2)


def test_pool_connections_end_idle_transactions(monkeypatch, database_url: str) -> None:
    """The server-side bound behind the route's own: a session idle in a transaction is ended."""
    monkeypatch.setenv("JOBDASH_DATABASE_URL", database_url)
    pool.close_pools()
    try:
        with pool.connection() as conn:
            timeout = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0]
        assert timeout not in ("0", "0ms")  # on (0 would mean never)
    finally:
        pool.close_pools()


def _sessions(conn: psycopg.Connection, database_url: str, condition: str = "true") -> int:
    """The dashboard's sessions on the test database (pg_stat_activity) meeting `condition`."""
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        f" WHERE application_name = %s AND datname = %s AND ({condition})",
        (APPLICATION_NAME, conninfo_to_dict(database_url)["dbname"]),
    ).fetchone()[0]


def _stalled(conn: psycopg.Connection, database_url: str) -> int:
    """Sessions idle inside a transaction for a while: an export waiting on its client."""
    stalled = "state = 'idle in transaction' AND now() - state_change > interval '1 second'"
    return _sessions(conn, database_url, stalled)


def _in_transaction(conn: psycopg.Connection, database_url: str) -> int:
    return _sessions(conn, database_url, "xact_start IS NOT NULL")


def _wait_for(condition, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling the database's view, not synchronising on time


@contextmanager
def stalled_download(base_url: str) -> Iterator[socket.socket]:
    """A client that asks for the export, reads its first bytes, then stops reading."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    sock.connect((host, int(port)))
    try:
        sock.sendall(f"GET {EXPORT} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
        yield sock
    finally:
        sock.close()


def _export_server(streamlit_server, database_url: str, stall_timeout_s: float) -> str:
    return streamlit_server(
        database_url,
        env={
            "JOBDASH_POOL_SIZE": "3",
            "JOBDASH_MAX_CONCURRENT_EXPORTS": "2",
            "JOBDASH_EXPORT_STALL_TIMEOUT_S": str(stall_timeout_s),
        },
    )


def _assert_connections_back(conn: psycopg.Connection, database_url: str, base_url: str) -> None:
    _wait_for(lambda: _in_transaction(conn, database_url) == 0, "the exports to end")
    assert _sessions(conn, database_url) <= 3
    # Every slot is free again: a full export goes through.
    status, headers, body = http_get(base_url, EXPORT)
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert len(list(csv.reader(io.StringIO(body.decode("utf-8"))))) == JOBS + 1
    assert _sessions(conn, database_url) <= 3
    assert _in_transaction(conn, database_url) == 0


def test_an_export_beyond_the_bound_gets_503_at_once_and_panels_still_load(
    streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    make_failed_jobs(conn, JOBS, queue="billing", note=NOTE)
    base_url = _export_server(streamlit_server, database_url, stall_timeout_s=600)
    with stalled_download(base_url), stalled_download(base_url):
        # Both hold a connection paused inside its cursor's transaction.
        _wait_for(lambda: _stalled(conn, database_url) == 2, "two exports to stall")
        started = time.monotonic()
        status, _, body = http_get(base_url, EXPORT)
        assert (status, body) == (503, b"too many exports running (2); try again\n")
        assert time.monotonic() - started < 10  # refused at once, not queued behind the others

        with open_stream(base_url) as ws:
            page = run_script(ws)
        assert "Queue Statistics" in texts(page)
        assert not problems(page)  # no panel unavailable, stale or broken
        assert _stalled(conn, database_url) == 2
    # The clients went away: their exports end and give their connections back.
    _assert_connections_back(conn, database_url, base_url)


def test_a_client_that_stops_reading_loses_its_export_and_its_connection(
    streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    make_failed_jobs(conn, JOBS, queue="billing", note=NOTE)
    base_url = _export_server(streamlit_server, database_url, stall_timeout_s=4)
    with stalled_download(base_url):
        _wait_for(lambda: _stalled(conn, database_url) == 1, "the export to stall")
        # The client still holds its socket open, but the export ends all the same.
        _assert_connections_back(conn, database_url, base_url)
