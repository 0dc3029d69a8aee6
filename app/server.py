"""What `jobdash serve` runs: the Streamlit dashboard (main.py) plus the streaming CSV routes."""

from __future__ import annotations

import streamlit as st

from jobdash.app.export_routes import ROUTES

app = st.App("main.py", routes=ROUTES)
