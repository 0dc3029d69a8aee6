"""Issue 8 item 4: foreign Host headers were served (DNS rebinding reached a dashboard bound to
127.0.0.1) and a websocket whose Origin matched a foreign Host was accepted. Now every kind of
request answers only for the allowed host names (JOBDASH_ALLOWED_HOSTS, default: the bound
address plus localhost)."""

from __future__ import annotations

import re

import psycopg
import pytest
from websockets.exceptions import InvalidStatus

from jobdash.app.web.guard import (
    default_allowed_hosts,
    host_allowed,
    origin_allowed,
    streamlit_host_names,
)
from jobdash.core.errors import ConfigError
from jobdash.core.settings import load_settings
from tests.actions_helpers import make_failed_jobs
from tests.streamlit_process import http_get, open_stream, run_script, texts

LOCAL = ("localhost", "127.0.0.1", "[::1]")


def test_default_allow_list_is_the_bound_address_and_the_local_names() -> None:
    assert default_allowed_hosts("127.0.0.1") == LOCAL
    assert default_allowed_hosts("0.0.0.0") == LOCAL
    assert default_allowed_hosts("::") == LOCAL
    assert default_allowed_hosts(None) == LOCAL
    assert default_allowed_hosts("10.1.2.3") == ("10.1.2.3", *LOCAL)
    assert default_allowed_hosts("fe80::1") == ("[fe80::1]", *LOCAL)
    assert default_allowed_hosts("Dash.Example.COM") == ("dash.example.com", *LOCAL)
    assert streamlit_host_names(LOCAL) == ["localhost", "127.0.0.1", "::1"]


def test_allowed_hosts_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBDASH_ALLOWED_HOSTS", " Dash.Example.com, *.corp.test,[::1],10.0.0.5 ")
    assert load_settings().allowed_hosts == ("dash.example.com", "*.corp.test", "[::1]", "10.0.0.5")
    monkeypatch.setenv("JOBDASH_ALLOWED_HOSTS", " , ")
    assert load_settings().allowed_hosts is None
    for bad in ("http://dash.example.com", "dash.example.com:8501", "::1", "a b", "*", "x/y"):
        monkeypatch.setenv("JOBDASH_ALLOWED_HOSTS", f"localhost,{bad}")
        with pytest.raises(ConfigError, match=re.escape(repr(bad.lower()))):
            load_settings()


def test_host_and_origin_matching() -> None:
    hosts = ("dash.example.com", "*.corp.test", "[::1]")
    assert host_allowed("DASH.example.com", hosts)
    assert host_allowed("a.b.corp.test", hosts) and not host_allowed("corp.test", hosts)
    assert host_allowed("::1", hosts) and host_allowed("[::1]", hosts)
    assert not host_allowed("evil.test", hosts) and not host_allowed("dash.example.com.evil", hosts)
    assert origin_allowed(None, hosts)  # not a browser
    assert origin_allowed("https://dash.example.com:8443", hosts)
    assert origin_allowed("http://[::1]:8501", hosts)
    for origin in ("http://evil.test", "null", "", "file://", "http://[zz"):
        assert not origin_allowed(origin, hosts), origin


def _static_asset(index_html: bytes) -> str:
    match = re.search(rb'src="\.?(/?static/js/[^"]+\.js)"', index_html)
    assert match, index_html[:500]
    return "/" + match.group(1).decode().lstrip("/")


def test_foreign_hosts_get_400_everywhere_and_allowed_hosts_are_served(
    streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    make_failed_jobs(conn, 2, queue="billing")
    base_url = streamlit_server(database_url)
    port = base_url.rsplit(":", 1)[1]

    status, _, index = http_get(base_url, "/", {"Host": f"127.0.0.1:{port}"})
    assert status == 200
    paths = [
        "/",
        "/_stcore/health",
        "/_stcore/host-config",
        _static_asset(index),
        "/export/failed-jobs.csv",
    ]
    for path in paths:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
            assert http_get(base_url, path, {"Host": host})[0] == 200, (path, host)
        for host in (f"evil.test:{port}", "evil.test", f"127.0.0.1.evil.test:{port}", "[::2]"):
            status, _, body = http_get(base_url, path, {"Host": host})
            assert (status, body) == (400, b"Invalid host header"), (path, host)

    # DNS rebinding: the page of evil.test talks to 127.0.0.1 under its own name.
    rebinding = {"host": "evil.test", "origin": f"http://evil.test:{port}"}
    with pytest.raises(InvalidStatus) as refused:
        open_stream(base_url, **rebinding)
    assert refused.value.response.status_code == 400
    # Another site's page opening the websocket of the dashboard it can reach.
    with pytest.raises(InvalidStatus) as refused:
        open_stream(base_url, origin="http://evil.test")
    assert refused.value.response.status_code == 403

    for host in ("127.0.0.1", "localhost"):
        with open_stream(base_url, host=host, origin=f"http://{host}:{port}") as ws:
            assert "Queue Statistics" in texts(run_script(ws))


def test_a_configured_allow_list_replaces_the_default(streamlit_server, database_url: str) -> None:
    base_url = streamlit_server(
        database_url, env={"JOBDASH_ALLOWED_HOSTS": "dash.example.test,127.0.0.1"}
    )
    port = base_url.rsplit(":", 1)[1]
    assert http_get(base_url, "/", {"Host": "dash.example.test"})[0] == 200
    assert http_get(base_url, "/", {"Host": "localhost"})[0] == 400
    with open_stream(base_url, host="dash.example.test", origin=f"http://dash.example.test:{port}"):
        pass
    with pytest.raises(InvalidStatus):
        open_stream(base_url, host="localhost")
