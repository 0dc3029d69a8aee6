"""A private PostgreSQL server the test controls: stop it, start it again, remove it after.

Tests that need a database outage cannot stop the shared server on 127.0.0.1:5432, so
`private_postgres()` makes one of their own: `initdb` into a temporary folder, `postgres` on a
free port of 127.0.0.1 (its Unix socket in that folder too), trust authentication for the
superuser `postgres`. Use it as a module- or session-scoped fixture (initdb + start takes
about a second and a half)::

    @pytest.fixture(scope="module")
    def pg() -> Iterator[PrivatePostgres]:
        with private_postgres() as server:
            yield server

    def test_outage(pg):
        url = pg.create_database(migrated=True)
        pg.stop()     # clients see "connection refused" until...
        pg.start()    # ...the same data comes back on the same port

Running as root (as on this machine): initdb and postgres refuse to run as root, so both run
as the unprivileged `postgres` user through `runuser -u postgres --`, and the folder is handed
to that user. Any other user runs the binaries directly. Binaries come from
PG_BIN (default /usr/lib/postgresql/15/bin).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVICE_USER = "postgres"
READY_TIMEOUT_S = 30

# Small and fast: a test server holds a few throw-away databases.
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "40",
    "shared_buffers": "16MB",
    "listen_addresses": "127.0.0.1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_service_user() -> list[str]:
    return ["runuser", "-u", SERVICE_USER, "--"] if os.geteuid() == 0 else []


class PrivatePostgres:
    """One server in `folder` (data in folder/data, log in folder/server.log)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "server.log"
        self.port = free_port()
        self._names = itertools.count()

    def _run(self, *command: str | Path) -> None:
        result = subprocess.run(
            [*_as_service_user(), *map(str, command)],
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C"},  # initdb fails on a LANG that is not installed
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{Path(str(command[0])).name} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, SERVICE_USER)
        self._run(
            PG_BIN / "initdb",
            "-D", self.data,
            "-U", "postgres",
            "--auth=trust",
            "--locale=C",
            "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it answers."""
        options = " ".join(
            [f"-c {k}={v}" for k, v in SERVER_SETTINGS.items()]
            + [f"-p {self.port}", f"-k {self.folder}"]
        )
        self._run(PG_BIN / "pg_ctl", "start", "-D", self.data, "-l", self.log, "-o", options, "-w")
        self.wait_until_ready()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` closes every client's connection (a restart or failover as
        clients see it), `immediate` is a crash."""
        self._run(PG_BIN / "pg_ctl", "stop", "-D", self.data, "-m", mode, "-w")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2) as conn:
                conn.execute("select 1")
            return True
        except psycopg.OperationalError:
            return False

    def wait_until_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"private PostgreSQL did not answer\n{self._log_tail()}")
            time.sleep(0.05)

    def execute(self, query: str | sql.Composable, dbname: str = "postgres") -> None:
        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(query)

    def create_database(self, *, migrated: bool = False) -> str:
        """A new database (with Procrastinate's and Jobdash's schema when `migrated`); its URL."""
        name = f"db{next(self._names)}"
        self.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        if migrated:
            from jobdash.core.schema import migrate

            migrate(self.url(name))
        return self.url(name)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private server; stopped and removed on exit, whatever state it is in."""
    folder = Path(tempfile.mkdtemp(prefix="jobdash-private-pg-"))
    server = PrivatePostgres(folder)
    try:
        server.init()
        for attempt in range(3):
            try:
                server.start()
                break
            except RuntimeError:
                # Another process took the free port between free_port() and the start.
                if attempt == 2:
                    raise
                server.port = free_port()
        yield server
    finally:
        if server.running:
            with contextlib.suppress(RuntimeError):
                server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
