"""What `jobdash serve` runs: the Streamlit dashboard (app/ui/main.py) with the routes beside it
(CSV export, sign-in), behind the host allow-list (guard.py).

`streamlit run` finds the app only through the literal `app = st.App(...)` line below.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from streamlit import config

from jobdash.app.web.auth_routes import AUTH_ROUTES
from jobdash.app.web.guard import allowed_hosts, guard_middleware
from jobdash.app.web.health import HEALTH_ROUTES
from jobdash.app.web.metrics import METRICS_ROUTES, RequestTimer
from jobdash.app.web.routes import ROUTES
from jobdash.core.auth.oidc import streamlit_auth_secrets
from jobdash.core.logs import apply_log_format
from jobdash.core.settings import load_auth_settings

apply_log_format()

# The dashboard script (not imported: the web room does not depend on the UI's modules).
MAIN_SCRIPT = Path(__file__).resolve().parents[1] / "ui" / "main.py"
HOSTS = allowed_hosts(config.get_option("server.address"))
# The identity provider from JOBDASH_OIDC_* when set (.streamlit/secrets.toml [auth] otherwise).
SECRETS = streamlit_auth_secrets(load_auth_settings())

# A literal `app = st.App(...)` is what `streamlit run` looks for. The host guard is outermost.
app = st.App(
    MAIN_SCRIPT,
    routes=[*ROUTES, *AUTH_ROUTES, *HEALTH_ROUTES, *METRICS_ROUTES],
    middleware=[*guard_middleware(HOSTS), Middleware(RequestTimer)],
    secrets=SECRETS,
)
