"""What `jobdash serve` runs: the Streamlit dashboard (main.py) plus the streaming CSV routes,
behind the host allow-list (guard.py).

`streamlit run` finds the app only through the literal `app = st.App(...)` line below.
"""

from __future__ import annotations

import streamlit as st
from streamlit import config

from jobdash.app.ui.navigation import MAIN_SCRIPT
from jobdash.app.web.guard import allowed_hosts, guard_middleware
from jobdash.app.web.routes import ROUTES

HOSTS = allowed_hosts(config.get_option("server.address"))

app = st.App(MAIN_SCRIPT, routes=ROUTES, middleware=guard_middleware(HOSTS))
