"""What `jobdash serve` runs: the Streamlit dashboard (main.py) plus the streaming CSV routes."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from jobdash.app.web.routes import ROUTES

# The dashboard script; a literal `app = st.App(...)` is what `streamlit run` looks for.
app = st.App(Path(__file__).resolve().parents[1] / "ui" / "main.py", routes=ROUTES)
