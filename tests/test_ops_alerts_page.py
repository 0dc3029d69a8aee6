"""The Alerts page (AppTest + real PostgreSQL): rules and their state, the last messages and
whether they were delivered, a test message for operators, a configuration error in one line."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from jobdash.app.ui.navigation import PAGES, UI_DIR
from jobdash.core.alerts.config import parse_alert_config
from jobdash.core.alerts.engine import evaluate_alerts
from tests.test_ops_alerts import config_text, finished, free_port, http_sink  # noqa: F401 (fixture)

PAGE = str(Path(UI_DIR) / "views" / "alerts.py")


def run_page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=30).run()


def texts(at: AppTest) -> str:
    parts = [
        e.value for kind in ("text", "caption", "markdown", "error", "info") for e in at.get(kind)
    ]
    return "\n".join(str(p) for p in parts).replace("\\", "")  # markdown escapes


def test_listed_in_the_navigation():
    assert any(entry.file == "views/alerts.py" for entry in PAGES)


def test_not_configured(dashboard, monkeypatch):
    monkeypatch.delenv("JOBDASH_ALERTS", raising=False)
    monkeypatch.delenv("JOBDASH_ALERTS_FILE", raising=False)
    at = run_page()
    assert not at.exception
    assert "No alert rules are configured" in texts(at)


def test_configuration_error(dashboard, monkeypatch):
    monkeypatch.setenv("JOBDASH_ALERTS", "[[rules]]\nname='a'\nkind='nope'")
    at = run_page()
    assert not at.exception
    assert "JOBDASH_ALERTS: rule 'a': kind must be one of" in texts(at)


def test_state_deliveries_and_test_button(dashboard, conn, http_sink, monkeypatch):  # noqa: F811
    down = f"http://127.0.0.1:{free_port()}/hook"
    text = config_text(http_sink.url).replace(
        f'name = "slack"\ntype = "slack"\nurl = "{http_sink.url}"',
        f'name = "slack"\ntype = "slack"\nurl = "{down}"\nretries = 0',
    )
    monkeypatch.setenv("JOBDASH_ALERTS", text)
    finished(conn, "billing", "failed", 6)
    config = parse_alert_config(text, "JOBDASH_ALERTS", 3600)
    evaluate_alerts(conn, config, healthy_s=120, public_url=None)
    at = run_page()
    assert not at.exception
    rules, sent = at.dataframe
    row = rules.value.iloc[0]
    assert row["rule"] == "billing failing" and row["state"] == "firing"
    assert "100 % failed (6 of 6)" in row["last seen"]
    delivered = dict(zip(sent.value["channel"], sent.value["delivered"], strict=True))
    assert delivered == {"hook": "yes", "slack": "NO"}
    assert "cannot reach the webhook" in " ".join(sent.value["error"])
    # No sign-in configured: the visitor is the anonymous admin, who may send a test.
    at.button(key="alert-test").click().run()
    assert not at.exception
    assert "Test message of billing failing — hook: delivered, slack: not delivered" in texts(at)
    assert http_sink.bodies[-1]["status"] == "test"


def test_viewers_cannot_send_test_messages(dashboard, monkeypatch, http_sink):  # noqa: F811
    from jobdash.app.ui import operations
    from jobdash.app.ui.widgets.feedback import REFUSED
    from jobdash.core.auth.identity import Identity, Role

    monkeypatch.setenv("JOBDASH_ALERTS", config_text(http_sink.url))
    refused = operations.test_alert("billing failing", Identity("vera", Role.VIEWER, "builtin"))
    assert refused.icon == REFUSED and "operator role needed" in refused.message
    monkeypatch.setenv("JOBDASH_READ_ONLY", "1")
    admin = Identity("alice", Role.ADMIN, "builtin")
    assert "read-only" in operations.test_alert("billing failing", admin).message
    assert http_sink.bodies == []
