"""A real `streamlit run` of the dashboard, started the way `jobdash serve` starts it (the same
command and flags), and a raw websocket client speaking Streamlit's protocol.

- `streamlit_server(database_url, env=None, script=None) -> base_url` (fixture, a factory):
  starts the server on a free port with JOBDASH_DATABASE_URL set (plus `env`), waits for
  /_stcore/health == "ok" and stops it after the test. Conftests re-export it.
- `open_stream(base_url)`, `run_script(ws)`, `clear_cache(ws)`: a session without a browser.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import ClientConnection, connect

from jobdash.app.cli.serve import dashboard_environment, streamlit_command
from jobdash.app.web import SERVER_SCRIPT
from jobdash.app.web.guard import default_allowed_hosts

REPO = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 60
SCRIPT_TIMEOUT_S = 60


def free_port() -> int:
    # The OS picks an unused ephemeral port: parallel test workers don't pick the same one.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listens_on(pid: int, port: int) -> bool:
    """Whether `pid` or a child of it (`jobdash serve` runs Streamlit as one) listens on
    `port`, not some other server that answered first."""
    try:
        process = psutil.Process(pid)
        processes = [process, *process.children(recursive=True)]
        connections = [c for p in processes for c in p.net_connections("tcp")]
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
            # Unknown /_stcore paths answer 200 with index.html: check the body.
            return response.status == 200 and response.read().strip() == b"ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_until_healthy(process: subprocess.Popen, port: int, log_path: Path) -> str:
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not (healthy(base_url) and listens_on(process.pid, port)):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server is not healthy after {STARTUP_TIMEOUT_S} s")
        time.sleep(0.2)  # polling the health endpoint, not synchronising on time
    return base_url


@pytest.fixture
def streamlit_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Factory: start the dashboard server for `database_url`; returns its base URL."""
    processes: list[subprocess.Popen] = []

    def start(
        database_url: str, env: dict[str, str] | None = None, script: Path | str | None = None
    ) -> str:
        port = free_port()
        log_path = tmp_path / f"streamlit-{port}.log"
        configured = (env or {}).get("JOBDASH_ALLOWED_HOSTS")
        hosts = configured.split(",") if configured else default_allowed_hosts("127.0.0.1")
        command = streamlit_command("127.0.0.1", port, hosts, Path(script or SERVER_SCRIPT))
        full_env = {**dashboard_environment(database_url, None, hosts), **(env or {})}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT
            )
        processes.append(process)
        return wait_until_healthy(process, port, log_path)

    yield start
    for process in processes:
        stop(process)


def http_get(
    base_url: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A GET with exactly these headers (a Host of our choosing, unlike urllib)."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest("GET", path, skip_host="Host" in (headers or {}))
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def open_stream(
    base_url: str, host: str | None = None, origin: str | None = None
) -> ClientConnection:
    """A websocket session as a client opens it (no XSRF token), to the server at `base_url`
    but saying `host` in its Host header (default: the server's own address)."""
    address, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((address, int(port)), timeout=10)
    url = f"ws://{host or address}:{port}/_stcore/stream"
    return connect(
        url, sock=sock, origin=origin, subprotocols=["streamlit"], open_timeout=10
    )  # type: ignore[arg-type]


def send(ws: ClientConnection, **fields: Any) -> None:
    message = BackMsg()
    for name, value in fields.items():
        if name == "rerun_script":
            message.rerun_script.query_string = value
        else:
            setattr(message, name, value)
    ws.send(message.SerializeToString())


def run_script(ws: ClientConnection, query_string: str = "") -> list[ForwardMsg]:
    """Ask for a full run and return every message up to its end."""
    send(ws, rerun_script=query_string)
    messages: list[ForwardMsg] = []
    deadline = time.monotonic() + SCRIPT_TIMEOUT_S
    while time.monotonic() < deadline:
        message = ForwardMsg()
        message.ParseFromString(ws.recv(timeout=SCRIPT_TIMEOUT_S))
        messages.append(message)
        if message.WhichOneof("type") == "script_finished":
            return messages
    raise TimeoutError("the script did not finish")


def clear_cache(ws: ClientConnection) -> None:
    """What a client's "Clear caches" sends (anyone who can open the websocket can)."""
    send(ws, clear_cache=True)


def texts(messages: list[ForwardMsg]) -> str:
    """Every string of a run's messages, joined (to look for a panel's title or a notice)."""
    return "\n".join(str(message) for message in messages)


def problems(messages: list[ForwardMsg]) -> list[str]:
    """The bodies of the st.error / st.warning boxes a run drew (not st.info)."""
    return [
        m.delta.new_element.alert.body
        for m in messages
        if m.WhichOneof("type") == "delta"
        and m.delta.WhichOneof("type") == "new_element"
        and m.delta.new_element.WhichOneof("type") == "alert"
        and m.delta.new_element.alert.format in (Alert.Format.ERROR, Alert.Format.WARNING)
    ]
