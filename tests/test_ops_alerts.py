"""Alerts that reach the team (issue 14): rules from TOML, evaluated by the maintenance side,
messages to a local HTTP sink and a local SMTP sink on 127.0.0.1: one message per incident,
one when it resolves, retries and failed deliveries recorded, one evaluator at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from aiosmtpd.controller import Controller

from jobdash.core.alerts.config import check_queues, parse_alert_config
from jobdash.core.alerts.engine import ALERTS_LOCK_KEY, evaluate_alerts, send_test_message
from jobdash.core.errors import ConfigError
from jobdash.jobs.maintenance.alerts import run_alerts
from jobdash.jobs.maintenance.rollup import run_rollup
from tests.loader_helpers import add_worker, defer, finish_in_past, set_event_age, set_status
from tests.pg_helpers import free_port

PUBLIC = "https://jobdash.example.com"


class HttpSink:
    """Records every POST body; answers `status`."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status = 200
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                sink.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(sink.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                sink.messages.append(
                    (envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode())
                )
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink()
    yield sink
    sink.close()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.controller.stop()


def config_text(webhook_url: str, smtp_port: int | None = None, **rule: object) -> str:
    rule_fields = {
        "name": "billing failing", "kind": "failure_rate", "queue": "billing",
        "above_percent": 20, "minutes": 10, "min_count": 5,
    } | rule if rule.get("kind", "failure_rate") == "failure_rate" else rule  # fmt: skip
    text = f"""
[[channels]]
name = "hook"
type = "webhook"
url = "{webhook_url}"
retries = 2
retry_wait_s = 0.01

[[channels]]
name = "slack"
type = "slack"
url = "{webhook_url}"
retry_wait_s = 0.01
"""
    if smtp_port:
        text += f"""
[[channels]]
name = "mail"
type = "email"
to = ["ops@example.com"]
from = "jobdash@example.com"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
"""
    text += "\n[[rules]]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in rule_fields.items())
    return text


def evaluate(conn: psycopg.Connection, text: str):
    config = parse_alert_config(text, "JOBDASH_ALERTS", remind_after_s=3600)
    return evaluate_alerts(conn, config, healthy_s=120, public_url=PUBLIC)


def finished(conn: psycopg.Connection, queue: str, outcome: str, count: int) -> None:
    for _ in range(count):
        job = defer(conn, queue=queue, task="tasks.charge")
        finish_in_past(conn, job, outcome, started_ago_s=40, finished_ago_s=30)
    run_rollup(conn)


def deliveries(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT kind, channel, delivered, attempts, error FROM jobdash_alert_deliveries ORDER BY id"
    ).fetchall()


def test_failure_burst_fires_once_and_resolves_once(conn, http_sink, smtp_sink):
    text = config_text(http_sink.url, smtp_sink.port)
    finished(conn, "billing", "succeeded", 4)
    assert evaluate(conn, text).sent == []  # 0 % failed
    finished(conn, "billing", "failed", 6)  # the burst: 6 of 10 failed
    report = evaluate(conn, text)
    assert report.sent == [("billing failing", "firing")]
    generic, slack = http_sink.bodies
    assert generic["status"] == "firing" and generic["rule"] == "billing failing"
    assert generic["value"] == pytest.approx(60.0)
    assert generic["url"] == f"{PUBLIC}/failed_jobs?queue=billing"
    assert set(slack) == {"text"} and slack["text"].startswith("[FIRING] billing failing: 60 %")
    assert f"Details: {PUBLIC}/failed_jobs?queue=billing" in slack["text"]
    (mail,) = smtp_sink.messages
    assert mail[1] == ["ops@example.com"]
    assert "Subject: [Jobdash] FIRING: billing failing" in mail[2]
    # Still failing, more failures: no second message (one per incident).
    finished(conn, "billing", "failed", 3)
    assert evaluate(conn, text).sent == []
    assert evaluate(conn, text).sent == []
    assert len(http_sink.bodies) == 2 and len(smtp_sink.messages) == 1
    state = conn.execute("SELECT status FROM jobdash_alert_state").fetchone()
    assert state == ("firing",)
    # Recovery: enough successes bring the rate under 20 %.
    finished(conn, "billing", "succeeded", 60)
    assert evaluate(conn, text).sent == [("billing failing", "resolved")]
    assert evaluate(conn, text).sent == []
    resolved = http_sink.bodies[2]
    assert resolved["status"] == "resolved" and len(http_sink.bodies) == 4
    assert "Fired for" in resolved["text"]
    assert [row[0] for row in deliveries(conn)] == ["firing"] * 3 + ["resolved"] * 3
    assert all(row[2] for row in deliveries(conn))


def test_min_count_and_other_queues(conn, http_sink):
    text = config_text(http_sink.url)
    finished(conn, "billing", "failed", 4)  # 100 % but fewer than 5 finished
    finished(conn, "emails", "failed", 10)  # another queue
    assert evaluate(conn, text).sent == []
    summary = conn.execute("SELECT summary FROM jobdash_alert_state").fetchone()[0]
    assert "fewer than 5: not judged" in summary


def test_sink_down_is_retried_and_shown_failed(conn):
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    text = config_text(closed)
    finished(conn, "billing", "failed", 6)
    report = evaluate(conn, text)
    assert report.sent == [("billing failing", "firing")]
    rows = deliveries(conn)
    hook = next(row for row in rows if row[1] == "hook")
    assert hook[:4] == ("firing", "hook", False, 3)  # 1 attempt + 2 retries
    assert "cannot reach the webhook" in hook[4] and closed not in hook[4]
    # Nobody got it: the next evaluation tries again.
    assert evaluate(conn, text).sent == [("billing failing", "firing")]


def test_sink_failing_then_back(conn, http_sink):
    http_sink.status = 500
    text = config_text(http_sink.url)
    finished(conn, "billing", "failed", 6)
    evaluate(conn, text)
    assert {row[4] for row in deliveries(conn)} == {"RuntimeError: HTTP 500 Internal Server Error"}
    assert len(http_sink.bodies) == 6  # each channel: 1 attempt + 2 retries
    http_sink.status = 200
    assert evaluate(conn, text).sent == [("billing failing", "firing")]
    assert evaluate(conn, text).sent == []  # delivered now: no more


def test_reminder_after_the_configured_time(conn, http_sink):
    text = config_text(http_sink.url, remind_after_minutes=10)
    finished(conn, "billing", "failed", 6)
    assert evaluate(conn, text).sent == [("billing failing", "firing")]
    assert evaluate(conn, text).sent == []  # told less than 10 minutes ago
    # Ten minutes pass (the time the team was told moves back, not the clock forward).
    conn.execute("update jobdash_alert_state set notified_at = notified_at - interval '10 min'")
    assert evaluate(conn, text).sent == [("billing failing", "reminder")]
    assert http_sink.bodies[-1]["text"].startswith("[STILL FIRING]")


def test_one_evaluator_at_a_time(conn, database_url, http_sink):
    text = config_text(http_sink.url)
    finished(conn, "billing", "failed", 6)
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (ALERTS_LOCK_KEY,))
        assert evaluate(conn, text).skipped
        # Unlocked before closing: a closed session's locks go when its backend has exited.
        other.execute("SELECT pg_advisory_unlock(%s)", (ALERTS_LOCK_KEY,))
    assert http_sink.bodies == []
    assert evaluate(conn, text).sent == [("billing failing", "firing")]


def test_test_message_leaves_the_state(conn, http_sink):
    config = parse_alert_config(config_text(http_sink.url), "x", remind_after_s=3600)
    results = send_test_message(conn, config, config.rules[0], healthy_s=120, public_url=None)
    assert [r.delivered for r in results] == [True, True]
    assert http_sink.bodies[0]["status"] == "test"
    assert "is not firing now" in http_sink.bodies[0]["text"]
    assert conn.execute("SELECT count(*) FROM jobdash_alert_state").fetchone() == (0,)
    assert [row[0] for row in deliveries(conn)] == ["test", "test"]


def rule_fires(conn, http_sink, **rule) -> bool:
    text = config_text(http_sink.url, **rule)
    evaluate(conn, text)
    return conn.execute("SELECT status FROM jobdash_alert_state").fetchone() == ("firing",)


def test_no_healthy_worker(conn, http_sink):
    add_worker(conn, heartbeat_ago_s=1, host=("h", 1, 5.0, 10.0, 2))  # listens on "default"
    assert not rule_fires(conn, http_sink, name="w", kind="no_healthy_worker", queue="default")
    conn.execute("DELETE FROM jobdash_alert_state")
    assert rule_fires(conn, http_sink, name="w", kind="no_healthy_worker", queue="billing")


def test_stalled_jobs(conn, http_sink):
    gone = add_worker(conn, heartbeat_ago_s=10_000)
    job = defer(conn)
    set_status(conn, job, "doing", worker_id=gone)
    assert rule_fires(conn, http_sink, name="s", kind="stalled_jobs")
    assert "1 stalled job" in http_sink.bodies[0]["summary"]


def test_queue_latency(conn, http_sink):
    job = defer(conn, queue="emails")
    set_event_age(conn, job, "deferred", 600)
    assert rule_fires(conn, http_sink, name="l", kind="queue_latency", queue="emails", above_s=300)
    assert "waited 600 s" in http_sink.bodies[0]["summary"]


def test_rollup_behind(conn, http_sink):
    assert rule_fires(conn, http_sink, name="r", kind="rollup_behind")  # never ran
    run_rollup(conn)
    assert not rule_fires(conn, http_sink, name="r", kind="rollup_behind")
    assert [body["status"] for body in http_sink.bodies if "status" in body] == [
        "firing", "resolved",
    ]  # fmt: skip


def test_periodic_missed(conn, http_sink):
    conn.execute(
        "INSERT INTO jobdash_periodic_tasks (task_name, cron, queue_name, published_by,"
        " first_published_at) VALUES ('tasks.nightly', '*/5 * * * *', 'default', 'h:1',"
        " now() - interval '1 hour')"
    )
    assert rule_fires(conn, http_sink, name="p", kind="periodic_missed", grace_s=0)
    assert "tasks.nightly" in http_sink.bodies[0]["summary"]


def test_configuration_errors():
    ok = config_text("http://127.0.0.1:1/x")
    assert parse_alert_config(ok, "JOBDASH_ALERTS", 60).rules[0].channels == ("hook", "slack")
    cases = {
        "[[rules]]\nname='a'\nkind='nope'": "kind must be one of",
        "[[rules]]\nname='a'\nkind='failure_rate'": "above_percent is required",
        "[[rules]]\nname='a'\nkind='stalled_jobs'\ncolor='red'": "unknown key 'color'",
        "[[rules]]\nname='a'\nkind='stalled_jobs'\nchannels=['x']": "unknown channel 'x'",
        "[[channels]]\nname='c'\ntype='slack'\nurl_env='JOBDASH_NOT_SET_X'": "not set",
        "[[channels]]\nname='c'\ntype='email'\nto='nobody'": "to must be",
        "rules = 3 = 4": "not valid TOML",
    }
    for text, expected in cases.items():
        with pytest.raises(ConfigError) as raised:
            parse_alert_config(text, "JOBDASH_ALERTS", 60)
        message = str(raised.value)
        assert expected in message and message.startswith("JOBDASH_ALERTS: ")
        assert "\n" not in message
    inline = 'rules = [{ name = "s", kind = "stalled_jobs" }]'  # one line, fits a variable
    assert parse_alert_config(inline, "JOBDASH_ALERTS", 60).rules[0].kind == "stalled_jobs"


def test_unknown_queue_is_a_configuration_error():
    config = parse_alert_config(config_text("http://127.0.0.1:1/x"), "JOBDASH_ALERTS", 60)
    with pytest.raises(ConfigError, match="rule 'billing failing': unknown queue 'billing'"):
        check_queues(config, {"default", "emails"})
    check_queues(config, {"billing"})


def test_worker_refuses_to_start_on_an_unknown_queue(database_url):
    env = {
        "JOBDASH_DATABASE_URL": database_url,
        "JOBDASH_ALERTS": config_text("http://127.0.0.1:1/x", queue="billng"),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    result = subprocess.run(
        [sys.executable, "-m", "jobdash", "worker"], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]  # after the worker's INFO log lines
    assert line.startswith("jobdash worker: error: JOBDASH_ALERTS: ")
    assert "rule 'billing failing': unknown queue 'billng'" in line
    assert "billing" in line.split("known queues:")[1]  # the demo App's queues


def test_run_alerts_from_the_environment(database_url, conn, http_sink, monkeypatch):
    monkeypatch.setenv("JOBDASH_ALERTS", config_text(http_sink.url))
    monkeypatch.setenv("JOBDASH_PUBLIC_URL", PUBLIC)
    finished(conn, "billing", "failed", 6)
    report = run_alerts(database_url)
    assert report is not None and report.sent == [("billing failing", "firing")]
    monkeypatch.delenv("JOBDASH_ALERTS")
    assert run_alerts(database_url) is None
