"""What `jobdash serve` runs: the Streamlit dashboard (main.py) plus the streaming CSV routes."""

from __future__ import annotations

import streamlit as st

from jobdash.app.ui.navigation import MAIN_SCRIPT
from jobdash.app.web.routes import ROUTES

app = st.App(MAIN_SCRIPT, routes=ROUTES)
