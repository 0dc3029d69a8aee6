"""SIGINT / SIGTERM ask the instrumented worker to stop, across restarts of Procrastinate's
Worker (whose own handlers exist only while one of its runs is under way)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(callback: Callable[[], None]) -> Iterator[None]:
    """The first SIGINT or SIGTERM calls `callback` (a graceful stop); the handlers that were
    in place come back at once, so a second signal does what it did before (Ctrl-C twice
    interrupts, as with Procrastinate's worker). Only in the main thread, not on Windows."""
    if os.name == "nt" or threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    installed = True

    def restore() -> None:
        nonlocal installed
        if not installed:
            return
        installed = False
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            if handler is not None:  # None: set from C, cannot be put back from Python
                signal.signal(sig, handler)

    def on_signal() -> None:
        restore()
        callback()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    try:
        yield
    finally:
        restore()
