"""The database goes away and comes back: panels go stale, keep their data, then recover.

The shared test server is never stopped: the dashboard reaches it through a small TCP proxy
that the test cuts (every connection dropped, new ones refused) and restores.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from streamlit.testing.v1 import AppTest

from jobdash.app.cache import data
from jobdash.app.ui.navigation import MAIN_SCRIPT
from jobdash.core import pool as db
from tests.dashboard_data import add_job

MAIN = MAIN_SCRIPT
PANEL_TITLES = ["Queue Statistics", "Worker Health", "Scheduled Tasks Timeline", "Failed Jobs"]


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops all, `restore()` listens again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()


@pytest.fixture
def proxied_url(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, TcpProxy]]:
    params = conninfo_to_dict(database_url)
    proxy = TcpProxy((params.get("host") or "127.0.0.1", int(params.get("port") or 5432)))
    proxy.restore()
    url = make_conninfo(**{**params, "host": "127.0.0.1", "port": str(proxy.port)})
    monkeypatch.setenv("JOBDASH_DATABASE_URL", url)
    data.invalidate()
    yield url, proxy
    db.close_pools()
    proxy.cut()
    data.invalidate()


def queue_size(at: AppTest) -> str:
    return next(m.value for m in at.metric if m.label == "Current queue size")


def test_panels_go_stale_while_the_database_is_away_and_recover(
    proxied_url: tuple[str, TcpProxy], conn: psycopg.Connection
) -> None:
    _, proxy = proxied_url
    add_job(conn)
    at = AppTest.from_file(str(MAIN), default_timeout=60).run()
    assert queue_size(at) == "1" and not at.warning

    proxy.cut()
    add_job(conn)  # the real database changes meanwhile
    data.invalidate()  # as if every cache entry had expired
    at.run()

    assert not at.exception
    notices = [w.value.replace("\\", "") for w in at.warning]
    assert len(notices) == 4
    assert all(n.startswith("stale since ") for n in notices)
    assert queue_size(at) == "1"  # last good data still shown
    assert [s.value for s in at.subheader] == PANEL_TITLES

    proxy.restore()
    deadline = time.monotonic() + 20
    while True:  # the pool reconnects in the background: poll until the panels recover
        data.invalidate()
        at.run()
        if not at.warning or time.monotonic() > deadline:
            break
    assert not at.warning, [w.value for w in at.warning]
    assert queue_size(at) == "2"
