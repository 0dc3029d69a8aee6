"""What `jobdash serve` runs: the Streamlit dashboard (main.py) plus the streaming CSV routes."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from jobdash.app.web.health import HEALTH_ROUTES
from jobdash.app.web.metrics import METRICS_ROUTES, RequestTimer
from jobdash.app.web.routes import ROUTES
from jobdash.core.logs import apply_log_format

apply_log_format()

# The dashboard script; a literal `app = st.App(...)` is what `streamlit run` looks for.
app = st.App(
    Path(__file__).resolve().parents[1] / "ui" / "main.py",
    routes=[*ROUTES, *HEALTH_ROUTES, *METRICS_ROUTES],
    middleware=[Middleware(RequestTimer)],
)
