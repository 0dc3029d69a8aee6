"""A tiny st.App for the sign-in browser test: the identity on one page, the real sign-in
routes plus /whoami (identity_from_request), the identity provider configured from
JOBDASH_OIDC_* (no secrets file)."""

from pathlib import Path

import streamlit as st
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from jobdash.app.web.auth_routes import AUTH_ROUTES, identity_from_request
from jobdash.core.auth.oidc import streamlit_auth_secrets
from jobdash.core.settings import load_auth_settings


def whoami(request: Request) -> PlainTextResponse:
    identity = identity_from_request(request)
    if identity is None:
        return PlainTextResponse("nobody", status_code=401)
    return PlainTextResponse(f"{identity.name} {identity.role} {identity.source}")


app = st.App(
    Path(__file__).with_name("page.py"),
    routes=[*AUTH_ROUTES, Route("/whoami", whoami)],
    secrets=streamlit_auth_secrets(load_auth_settings()),
)
