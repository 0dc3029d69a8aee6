"""What keeps CSV exports from starving the dashboard and the workers of connections.

- `EXPORT_SLOTS`: at most JOBDASH_MAX_CONCURRENT_EXPORTS exports at once per process, and
  never every connection of the pool (one stays for the panels). The next export is refused
  at once rather than queued: a queue of waiting downloads would only hold sockets open.
- `ExportResponse`: streams the chunks and, whatever happens (done, error, client gone, a
  client that stops reading), closes the cursor, returns the connection to the pool and frees
  the slot. A client that takes no data for JOBDASH_EXPORT_STALL_TIMEOUT_S ends its export:
  otherwise it would keep the connection idle in its transaction for as long as it likes
  (PostgreSQL's idle_in_transaction_session_timeout would kill the session, but the export
  would still hold its pool connection and its slot until the client read again).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack

import anyio
import psycopg
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from jobdash.core.errors import describe_error
from jobdash.core.settings import Settings

LOG = logging.getLogger(__name__)


def export_limit(settings: Settings) -> int:
    """Exports allowed at once: the setting, leaving one pooled connection for the panels."""
    return max(1, min(settings.max_concurrent_exports, settings.pool_size - 1))


class ExportSlots:
    """A counter of running exports with a limit checked on entry (never waits)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0

    def try_acquire(self, limit: int) -> bool:
        with self._lock:
            if self._running >= limit:
                return False
            self._running += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._running = max(0, self._running - 1)

    @property
    def running(self) -> int:
        with self._lock:
            return self._running


EXPORT_SLOTS = ExportSlots()


class ExportResponse(StreamingResponse):
    """A streamed download whose resources (`cleanup`) are released when it ends, however."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        cleanup: ExitStack,
        stall_timeout_s: float,
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(chunks, media_type=media_type, headers=headers)
        self._cleanup = cleanup
        self._stall_timeout_s = stall_timeout_s

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for chunk in self.body_iterator:
                with anyio.move_on_after(self._stall_timeout_s) as waited:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if waited.cancelled_caught:
                    LOG.warning(
                        "export ended: the client took no data for %s s", self._stall_timeout_s
                    )
                    return  # incomplete: the server closes the connection
        except psycopg.Error as exc:
            # Mid-stream nothing can be said to the client but a cut-short file.
            LOG.warning("export ended: %s", describe_error(exc))
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # In a thread (a rollback may wait on the network) and shielded: a cancelled
            # request still gives its connection back.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._release)

    def _release(self) -> None:
        try:
            self._cleanup.close()
        except Exception as exc:  # the connection may be dead already; it is freed anyway
            LOG.warning("export cleanup: %s", describe_error(exc))
