"""Issue 8 item 5: settings depended on the current directory (`.streamlit/config.toml` was
read only from the folder `jobdash serve` started in; elsewhere the grid's own "Download as
CSV", which does not neutralise formulas, came back). `serve` now passes every setting the
product relies on as a flag, and flags win over config files and STREAMLIT_* variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from streamlit.proto.NewSession_pb2 import Config

from jobdash.app.cli.serve import STREAMLIT_OPTIONS, browse_url, streamlit_command
from tests.streamlit_process import (
    free_port,
    http_get,
    open_stream,
    run_script,
    stop,
    wait_until_healthy,
)

# What a stray config file could say: each line undoes something the product relies on.
HOSTILE_CONFIG = """
[global]
developmentMode = true
[server]
baseUrlPath = "elsewhere"
enableCORS = false
enableXsrfProtection = false
runOnSave = true
fileWatcherType = "poll"
[client]
toolbarMode = "developer"
disableDataExport = false
showErrorDetails = "full"
showErrorLinks = true
"""


def test_the_command_carries_every_option_and_each_allowed_host() -> None:
    command = streamlit_command("0.0.0.0", 8600, ("dash.example.com", "[::1]"))
    assert command[1:4] == ["-m", "streamlit", "run"]
    for name, value in STREAMLIT_OPTIONS.items():
        assert f"--{name}={value}" in command
    assert "--server.address=0.0.0.0" in command and "--server.port=8600" in command
    assert [c for c in command if c.startswith("--server.allowedHosts=")] == [
        "--server.allowedHosts=dash.example.com",
        "--server.allowedHosts=::1",
    ]
    assert browse_url("0.0.0.0", 8600, ("*.corp.test", "dash.example.com")) == (
        "http://dash.example.com:8600"
    )
    assert browse_url("::1", 8600, ()) == "http://[::1]:8600"


@pytest.fixture
def serve_elsewhere(tmp_path: Path, database_url: str):
    """`jobdash serve` started from a folder with a hostile .streamlit/config.toml."""
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text(HOSTILE_CONFIG)
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "STREAMLIT_CLIENT_TOOLBAR_MODE": "developer"}
    env.pop("JOBDASH_ALLOWED_HOSTS", None)
    command = [sys.executable, "-m", "jobdash", "serve", "--database-url", database_url]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield wait_until_healthy(process, port, log_path)
    finally:
        stop(process)


def test_serve_from_another_folder_runs_with_the_products_settings(
    serve_elsewhere: str, conn: psycopg.Connection
) -> None:
    base_url = serve_elsewhere
    with open_stream(base_url) as ws:
        messages = run_script(ws)
    [session] = [m.new_session for m in messages if m.WhichOneof("type") == "new_session"]
    assert session.config.disable_data_export  # no grid "Download as CSV"
    assert session.config.toolbar_mode == Config.ToolbarMode.VIEWER
    assert session.config.show_error_links == Config.ShowErrorLinks.SHOW_ERROR_LINKS_FALSE
    assert not session.config.allow_run_on_save

    status, headers, _ = http_get(base_url, "/_stcore/health", {"Origin": "http://evil.test"})
    assert status == 200
    assert "access-control-allow-origin" not in headers  # CORS protection on
    assert "_streamlit_xsrf=" in headers.get("set-cookie", "")  # XSRF protection on
    assert http_get(base_url, "/", {"Host": "evil.test"})[0] == 400  # the allow-list is on
