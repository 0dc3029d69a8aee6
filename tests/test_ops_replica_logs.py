"""JOBDASH_READ_DATABASE_URL (loaders read there, actions write to the primary, the lag in the
footer) and JOBDASH_LOG_FORMAT=json (one JSON object per line, worker side and dashboard)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from jobdash.app.cache import data
from jobdash.app.read.replica import ReplicaStatus, load_replica_status, replica_text
from jobdash.app.ui import operations
from jobdash.core.errors import ConfigError
from jobdash.core.logs import JsonFormatter, configure_logging
from tests.actions_helpers import job_status, make_failed_jobs
from tests.conftest import create_database_from_template, drop_database, url_for
from tests.dashboard_app import MAIN, reset_state
from tests.loader_helpers import defer


@pytest.fixture
def read_url(server_url, template_db) -> Iterator[str]:
    name = create_database_from_template(server_url, template_db)
    yield url_for(server_url, name)
    drop_database(server_url, name)


def test_loaders_read_the_replica_actions_write_the_primary(dashboard, conn, read_url, monkeypatch):
    monkeypatch.setenv("JOBDASH_READ_DATABASE_URL", read_url)
    with psycopg.connect(read_url, autocommit=True) as replica:
        defer(replica, queue="only_on_the_replica")
    (failed,) = make_failed_jobs(conn, 1)
    stats = data.fetch(data.QUEUE_STATS).data
    assert [q.name for q in stats.queues] == ["only_on_the_replica"]
    flash = operations.retry([failed])
    assert "1 retried" in flash.message or "retried 1" in flash.message.lower(), flash.message
    assert job_status(conn, failed) == "todo"  # written on the primary


def test_footer_shows_the_lag(dashboard, read_url, monkeypatch):
    monkeypatch.setenv("JOBDASH_READ_DATABASE_URL", read_url)
    at = AppTest.from_file(str(MAIN), default_timeout=60).run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "Reading from JOBDASH_READ_DATABASE_URL, which is not a standby: no lag." in captions
    reset_state()
    monkeypatch.delenv("JOBDASH_READ_DATABASE_URL")
    at = AppTest.from_file(str(MAIN), default_timeout=60).run()
    assert "Reading from" not in " ".join(c.value for c in at.caption)


def test_replica_status_of_a_primary(conn):
    assert load_replica_status(conn) == ReplicaStatus(in_recovery=False, lag_s=None)


def test_replica_texts():
    assert (
        replica_text(ReplicaStatus(True, 3.4)) == "Reading from a replica, 3 s behind the primary."
    )
    assert "replayed nothing" in replica_text(ReplicaStatus(True, None))
    assert "unknown (database down)" in replica_text(None, "database down")


def test_json_formatter():
    record = logging.LogRecord("jobdash.x", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    record.job_id = 7
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "warning" and entry["logger"] == "jobdash.x"
    assert entry["message"] == "a b" and entry["job_id"] == 7 and entry["time"].endswith("+00:00")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]


def test_bad_log_format(monkeypatch):
    monkeypatch.setenv("JOBDASH_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="JOBDASH_LOG_FORMAT must be text or json"):
        configure_logging(logging.INFO)


def test_worker_side_logs_json(database_url):
    """`jobdash rollup` logs through the CLI's setup: every line on stderr is a JSON object."""
    env = {
        **os.environ, "JOBDASH_DATABASE_URL": database_url, "JOBDASH_LOG_FORMAT": "json",
    }  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "jobdash", "-v", "rollup"],
        env=env, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "expected debug log lines with -v"
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(entry)
