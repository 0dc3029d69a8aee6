"""A dashboard tab without a browser: a websocket client that drives a session the way
Streamlit 1.67's frontend does, for the fault tests and bench/bench_viewers.py.

What the frontend does, read from its bundle (static/js/index.*.js) and reproduced here:
- It opens `/_stcore/stream` and sends one `rerun_script` BackMsg (a full run).
- For each `auto_rerun` ForwardMsg (a fragment with `run_every`), it starts a
  `setInterval(interval)` that sends `rerun_script` with that `fragment_id`,
  `is_auto_rerun=True`, the current `page_script_hash` and query string, and the hashes of the
  messages it has cached. A fixed-rate timer: it does not wait for the previous run to end.
- `stop_auto_rerun` clears those timers; a full run's `new_session` (no fragment ids in its
  metadata) clears every timer, and the run's own `auto_rerun` messages start them again.
- Messages whose metadata says `cacheable` are kept by hash; the server then sends only a
  reference (`ref_hash`) for an element the tab already has.

`Viewer` keeps, per fragment, what its latest run drew (headings, alert bodies, captions) and
when each tick was sent and answered, so a test can ask "what does the Failed Jobs panel say
now" and a benchmark "did any panel fall behind its interval".
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from tests.streamlit_process import open_stream

FINISHED = ForwardMsg.ScriptFinishedStatus


@dataclass
class FragmentView:
    """One fragment as the tab shows it: what its latest completed run drew."""

    fragment_id: str
    interval: float = 0.0
    heading: str = ""  # the first one: a fragment may draw several panels
    alerts: list[str] = field(default_factory=list)
    # Each panel's alerts, under its heading.
    panel_alerts: dict[str, list[str]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    runs: int = 0
    ticks: int = 0
    # Seconds from a tick to the end of the run that answered it, one per answered tick.
    latencies: list[float] = field(default_factory=list)
    # Completion times of its runs (time.monotonic()).
    finished_at: list[float] = field(default_factory=list)


def _strings(element: object) -> list[str]:
    """The text an element shows (heading, markdown, caption, metric, alert, text)."""
    kind = element.WhichOneof("type")  # type: ignore[attr-defined]
    value = getattr(element, kind) if kind else None
    if kind == "heading":
        return [value.body]
    if kind in ("markdown", "text", "alert"):
        return [value.body]
    if kind == "metric":
        return [f"{value.label}: {value.body}"]
    return []


class Viewer:
    """One tab of the dashboard at `base_url`, answering its timers on a thread of its own."""

    def __init__(self, base_url: str, query_string: str = "", page_name: str = "") -> None:
        self.base_url = base_url
        self.query_string = query_string
        self.page_name = page_name
        self.page_script_hash = ""
        self.fragments: dict[str, FragmentView] = {}
        self.full_runs = 0
        self.finished: Counter[str] = Counter()  # script_finished statuses by name
        self.errors: list[str] = []
        self.closed = threading.Event()
        self._cached: set[str] = set()
        self._timers: dict[str, threading.Thread] = {}
        self._timer_stops: dict[str, threading.Event] = {}
        self._pending: dict[str, list[float]] = {}  # fragment -> tick times not yet answered
        self._lock = threading.Condition()
        self._ws: ClientConnection | None = None
        self._reader: threading.Thread | None = None
        self._run_fragments: list[str] = []
        self._run_draws: dict[str, FragmentView] = {}
        self._ticks_paused = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> Viewer:
        self._ws = open_stream(self.base_url)
        self._reader = threading.Thread(target=self._read, name="viewer reader", daemon=True)
        self._reader.start()
        self._send_rerun(fragment_id="", auto=False)
        return self

    def close(self) -> None:
        self.closed.set()
        for stop in list(self._timer_stops.values()):
            stop.set()
        if self._ws is not None:
            self._ws.close()
        if self._reader is not None:
            self._reader.join(timeout=10)

    def __enter__(self) -> Viewer:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the tab shows ---------------------------------------------------------------

    def panel(self, heading: str) -> FragmentView | None:
        """The panel under `heading` as its fragment's latest run drew it (its own alerts; the
        fragment's runs, ticks and timings)."""
        with self._lock:
            for view in self.fragments.values():
                if heading in view.panel_alerts:
                    return replace(view, heading=heading, alerts=view.panel_alerts[heading])
            return None

    def wait_for(self, condition: Callable[[Viewer], bool], timeout: float, what: str) -> None:
        """Wait until `condition(self)` holds, re-checked after every message batch."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
                if self.closed.is_set():
                    raise AssertionError(f"the session closed waiting for {what}: {self.errors}")
                self._lock.wait(min(left, 0.5))

    # -- protocol -------------------------------------------------------------------------

    def _send_rerun(self, fragment_id: str, auto: bool) -> None:
        message = BackMsg()
        rerun = message.rerun_script
        rerun.query_string = self.query_string
        rerun.page_script_hash = self.page_script_hash
        if not self.page_script_hash:
            rerun.page_name = self.page_name
        rerun.fragment_id = fragment_id
        rerun.is_auto_rerun = auto
        with self._lock:
            rerun.cached_message_hashes.extend(self._cached)
        rerun.context_info.timezone = "UTC"
        rerun.context_info.locale = "en-US"
        assert self._ws is not None
        self._ws.send(message.SerializeToString())

    def _tick(self, fragment_id: str, interval: float, stop: threading.Event) -> None:
        # setInterval: a fixed rate from when the timer was set.
        next_at = time.monotonic() + interval
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += interval
            if self._ticks_paused.is_set():
                continue
            with self._lock:
                self._pending.setdefault(fragment_id, []).append(time.monotonic())
                self.fragments[fragment_id].ticks += 1
            try:
                self._send_rerun(fragment_id, auto=True)
            except ConnectionClosed:
                return

    def _start_timer(self, fragment_id: str, interval: float) -> None:
        view = self.fragments.setdefault(fragment_id, FragmentView(fragment_id))
        if fragment_id in self._timers and view.interval == interval:
            return
        self._stop_timer(fragment_id)
        view.interval = interval
        stop = threading.Event()
        thread = threading.Thread(
            target=self._tick, args=(fragment_id, interval, stop), name="viewer tick", daemon=True
        )
        self._timer_stops[fragment_id] = stop
        self._timers[fragment_id] = thread
        thread.start()

    def _stop_timer(self, fragment_id: str) -> None:
        stop = self._timer_stops.pop(fragment_id, None)
        if stop is not None:
            stop.set()
        self._timers.pop(fragment_id, None)

    def _read(self) -> None:
        assert self._ws is not None
        try:
            while not self.closed.is_set():
                raw = self._ws.recv()
                message = ForwardMsg()
                message.ParseFromString(raw)
                with self._lock:
                    self._handle(message)
                    self._lock.notify_all()
        except ConnectionClosed as exc:
            if not self.closed.is_set():
                self.errors.append(f"connection closed: {exc}")
        finally:
            self.closed.set()
            with self._lock:
                self._lock.notify_all()

    def _handle(self, message: ForwardMsg) -> None:
        kind = message.WhichOneof("type")
        if message.metadata.cacheable and message.hash:
            self._cached.add(message.hash)
        if kind == "new_session":
            self._run_fragments = list(message.metadata.run.fragment_ids)
            self._run_draws = {}
            if message.new_session.page_script_hash:
                self.page_script_hash = message.new_session.page_script_hash
            if not self._run_fragments:
                for fragment_id in list(self._timers):
                    self._stop_timer(fragment_id)
        elif kind == "page_info_changed":
            self.query_string = message.page_info_changed.query_string
        elif kind == "auto_rerun":
            self._start_timer(message.auto_rerun.fragment_id, message.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment_id in message.stop_auto_rerun.fragment_ids:
                self._stop_timer(fragment_id)
        elif kind == "delta":
            self._draw(message)
        elif kind == "script_finished":
            self._finished(message.script_finished)

    def _draw(self, message: ForwardMsg) -> None:
        delta = message.delta
        if not delta.fragment_id or delta.WhichOneof("type") != "new_element":
            return
        draw = self._run_draws.setdefault(delta.fragment_id, FragmentView(delta.fragment_id))
        element = delta.new_element
        strings = _strings(element)
        if element.WhichOneof("type") == "heading":
            draw.heading = draw.heading or strings[0]
            draw.panel_alerts[strings[0]] = []
        elif element.WhichOneof("type") == "alert":
            draw.alerts.extend(strings)
            if draw.panel_alerts:
                list(draw.panel_alerts.values())[-1].extend(strings)
        draw.texts.extend(strings)

    def _finished(self, status: int) -> None:
        now = time.monotonic()
        self.finished[FINISHED.Name(status)] += 1
        if status == FINISHED.FINISHED_SUCCESSFULLY:
            self.full_runs += 1
        for fragment_id, draw in self._run_draws.items():
            view = self.fragments.setdefault(fragment_id, FragmentView(fragment_id))
            view.heading = draw.heading or view.heading
            view.alerts, view.texts = draw.alerts, draw.texts
            view.panel_alerts = draw.panel_alerts
            view.runs += 1
            view.finished_at.append(now)
            for tick in self._pending.pop(fragment_id, []):
                view.latencies.append(now - tick)
        self._run_draws = {}
