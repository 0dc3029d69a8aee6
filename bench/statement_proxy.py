"""A TCP proxy in front of PostgreSQL that counts the statements its clients send.

pg_stat_statements is not installed on every server and pg_stat_database counts every client
of a database: the dashboard is pointed at this proxy instead, so exactly its statements are
counted. It reads the frontend side of the wire protocol: after the startup packet (no type
byte; the URL must say sslmode=disable and gssencmode=disable so no encryption request comes
first), each message is a type byte and a length; a statement is a simple Query ('Q') or an
Execute ('E') of the extended protocol. Empty queries (the pool's connection checks) are
counted apart.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from dataclasses import dataclass

from psycopg.conninfo import conninfo_to_dict, make_conninfo


@dataclass
class Counts:
    statements: int = 0
    empty_queries: int = 0
    connections: int = 0


class _Frontend:
    """Parses one client's byte stream into messages, counting statements."""

    def __init__(self, counts: Counts, lock: threading.Lock) -> None:
        self.counts = counts
        self.lock = lock
        self.buffer = bytearray()
        self.started = False

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if not self.started:
                if len(self.buffer) < 4:
                    return
                (length,) = struct.unpack("!I", self.buffer[:4])
                if len(self.buffer) < length:
                    return
                del self.buffer[:length]
                self.started = True
                continue
            if len(self.buffer) < 5:
                return
            kind = chr(self.buffer[0])
            (length,) = struct.unpack("!I", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return
            body = bytes(self.buffer[5 : 1 + length])
            del self.buffer[: 1 + length]
            with self.lock:
                if kind == "Q" and body.strip(b"\x00 ;") == b"":
                    self.counts.empty_queries += 1
                elif kind in ("Q", "E"):
                    self.counts.statements += 1


class StatementProxy:
    """Forwards 127.0.0.1:<port> to `target_url`'s server; `counts` so far, `url` to use."""

    def __init__(self, target_url: str) -> None:
        params = conninfo_to_dict(target_url)
        self.target = (params.get("host") or "127.0.0.1", int(params.get("port") or 5432))
        self.counts = Counts()
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.url = make_conninfo(
            **{**params, "host": "127.0.0.1", "port": str(self.port)},
            sslmode="disable",
            gssencmode="disable",
        )
        threading.Thread(target=self._accept, daemon=True, name="statement proxy").start()

    def snapshot(self) -> Counts:
        with self._lock:
            counts = self.counts
            return Counts(counts.statements, counts.empty_queries, counts.connections)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self.counts.connections += 1
            frontend = _Frontend(self.counts, self._lock)
            threading.Thread(
                target=self._pipe, args=(client, upstream, frontend), daemon=True
            ).start()

    @staticmethod
    def _pipe(client: socket.socket, upstream: socket.socket, frontend: _Frontend) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        frontend.feed(data)
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()
