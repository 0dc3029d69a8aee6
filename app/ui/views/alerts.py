"""Alerts: the configured rules, their state (ok / firing since …), the last messages sent and
whether delivery worked; a test message per rule (operator role)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from jobdash.app.cache import data
from jobdash.app.read.alerts import AlertOverview, configured_alerts
from jobdash.app.rules.text import escape_markdown
from jobdash.app.ui import operations
from jobdash.app.ui.auth import identity_from_streamlit
from jobdash.app.ui.widgets import columns
from jobdash.app.ui.widgets.feedback import flash, show_flash
from jobdash.app.ui.widgets.results import data_or_notice
from jobdash.core.alerts.config import AlertConfig
from jobdash.core.auth.identity import Action, Identity, allowed

HOW_TO = """No alert rules are configured. Set `JOBDASH_ALERTS` (TOML text) or
`JOBDASH_ALERTS_FILE` (a TOML file) for the workers and the dashboard, for example:

```toml
[[channels]]
name = "ops-slack"
type = "slack"
url_env = "SLACK_WEBHOOK_URL"

[[rules]]
name = "billing failing"
kind = "failure_rate"
queue = "billing"
above_percent = 20
minutes = 10
min_count = 5
```
Rules are evaluated every minute by an instrumented worker (`jobdash worker`), with no
browser open."""


def rules_frame(config: AlertConfig, overview: AlertOverview) -> pd.DataFrame:
    rows = []
    for rule in config.rules:
        state = overview.states.get(rule.name)
        rows.append(
            {
                "rule": rule.name,
                "state": (state.status if state else "not evaluated yet"),
                "since": state.since if state else None,
                "condition": rule.describe(),
                "last seen": state.summary if state else "",
                "evaluated": state.evaluated_at if state else None,
                "channels": ", ".join(rule.channels) or "(none)",
            }
        )
    return pd.DataFrame(rows)


def deliveries_frame(overview: AlertOverview) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "sent": d.sent_at,
                "rule": d.rule,
                "message": d.kind,
                "channel": d.channel,
                "delivered": "yes" if d.delivered else "NO",
                "attempts": d.attempts,
                "error": d.error or "",
            }
            for d in overview.deliveries
        ],
        columns=["sent", "rule", "message", "channel", "delivered", "attempts", "error"],
    )


def test_section(config: AlertConfig, identity: Identity | None) -> None:
    st.subheader("Send a test message", anchor=False)
    if not allowed(identity, Action.TEST_ALERT, read_only=operations.read_only()):
        st.caption("The operator role is needed to send test messages.")
        return
    name = st.selectbox("Rule", [rule.name for rule in config.rules], key="alert_test_rule")
    if st.button("Test this rule", key="alert-test", icon=":material/send:") and name:
        with st.spinner("Sending…"):
            flash(operations.test_alert(name, identity))
        st.rerun()


def main() -> None:
    st.title("Alerts", anchor=False)
    show_flash(caption=True)
    config, problem = configured_alerts()
    if problem:
        st.error(f"Alert configuration unusable — {escape_markdown(problem)}")
        return
    if config is None or not config.rules:
        st.info(HOW_TO)
        return
    overview = data_or_notice("Alerts", data.fetch(data.ALERTS))
    if overview is None:
        return
    firing = sum(
        1
        for rule in config.rules
        if getattr(overview.states.get(rule.name), "status", "") == "firing"
    )
    st.text(f"{len(config.rules)} rules from {config.source}, {firing} firing")
    frame = rules_frame(config, overview)
    times = {"since": columns.time_column("Since"), "evaluated": columns.time_column("Evaluated")}
    st.dataframe(frame, hide_index=True, column_config=columns.config(frame.columns, **times))
    st.subheader("Last messages", anchor=False)
    if overview.deliveries:
        sent = deliveries_frame(overview)
        sent_config = columns.config(sent.columns, sent=columns.time_column("Sent"))
        st.dataframe(sent, hide_index=True, column_config=sent_config)
    else:
        st.caption("No message sent yet.")
    visitor = identity_from_streamlit()
    test_section(config, visitor if isinstance(visitor, Identity) else None)


main()
