"""The HTTP side of the dashboard: the ASGI app `jobdash serve` runs (server.py) and its routes."""

from pathlib import Path

# What `streamlit run` is given: the dashboard script plus the routes beside it.
SERVER_SCRIPT = Path(__file__).resolve().parent / "server.py"
