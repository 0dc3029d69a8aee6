"""Issue 8 item 1: any client that can open the websocket could exhaust PostgreSQL's connections
(each `clear_cache` dropped the cached pool without closing it). The pool now lives outside
anything a client can clear: whatever clients send, the dashboard holds at most
JOBDASH_POOL_SIZE connections."""

from __future__ import annotations

import time

import psycopg
from psycopg.conninfo import conninfo_to_dict

from jobdash.core.pool import APPLICATION_NAME
from tests.actions_helpers import make_failed_jobs
from tests.streamlit_process import clear_cache, open_stream, run_script, texts

POOL_SIZE = 3
MESSAGES = 200


def dashboard_connections(conn: psycopg.Connection, database_url: str) -> int:
    """Connections the dashboard process holds to the test database (pg_stat_activity)."""
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
        (APPLICATION_NAME, conninfo_to_dict(database_url)["dbname"]),
    ).fetchone()[0]


def test_clear_cache_messages_leave_the_connections_at_the_pool_size(
    streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    make_failed_jobs(conn, 3, queue="billing")
    base_url = streamlit_server(database_url, env={"JOBDASH_POOL_SIZE": str(POOL_SIZE)})
    counts = []
    with open_stream(base_url) as ws:
        assert "Queue Statistics" in texts(run_script(ws))
        assert dashboard_connections(conn, database_url) >= 1  # the panels did read
        started = time.monotonic()
        for i in range(MESSAGES):
            clear_cache(ws)
            run_script(ws)  # caches gone: this run reads the database again
            if i % 20 == 0:
                counts.append(dashboard_connections(conn, database_url))
        print(f"{MESSAGES} clear+rerun in {time.monotonic() - started:.1f} s")
    counts.append(dashboard_connections(conn, database_url))
    assert max(counts) <= POOL_SIZE, counts
