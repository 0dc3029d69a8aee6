"""Who is looking at the page, and the sign-in / not-allowed screens.

`identity_from_streamlit()`: st.user when an identity provider is configured (its e-mail and
groups claim go through JOBDASH_ROLES), else the built-in session cookie, which the page sees
in st.context.cookies (HttpOnly cookies ride on the websocket handshake).
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

import streamlit as st

from jobdash.app.rules.text import escape_markdown
from jobdash.app.web.auth_routes import SIGN_OUT_PATH, current_auth, sign_in_url
from jobdash.core.auth.identity import Identity, NoRole
from jobdash.core.auth.sessions import SESSION_COOKIE


def identity_from_streamlit() -> Identity | NoRole | None:
    """The identity of this session's person: NoRole if signed in without a role, None if not
    signed in (ANONYMOUS when no sign-in is configured)."""
    service = current_auth()
    # The same order as identity_from_request: a built-in session first.
    if service.builtin:
        identity = service.read_session(st.context.cookies.get(SESSION_COOKIE))
        if identity is not None:
            return identity
    if service.oidc and st.user.is_logged_in:
        found = service.identity_from_claims(st.user.to_dict())
        if found is not None:
            return found
    return service.anonymous()


def _current_path() -> str:
    parts = urlsplit(st.context.url or "/")
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _same_tab_link(label: str, url: str) -> None:
    # st.link_button and markdown links always open a new tab; a plain anchor in st.html
    # (rendered in the page, not an iframe) navigates this one. Both values are escaped.
    st.html(f'<a href="{html.escape(url)}">{html.escape(label)}</a>')


def sign_in_screen() -> None:
    """What someone not signed in sees instead of the dashboard; stops the run."""
    service = current_auth()
    st.title("Sign in to Jobdash", anchor=False)
    if service.oidc:
        st.button("Sign in with your identity provider", on_click=st.login, type="primary")
    if service.builtin:
        _same_tab_link("Sign in with a Jobdash user name", sign_in_url(_current_path()))
    st.stop()


def not_allowed_screen(visitor: NoRole) -> None:
    """What someone signed in without a role sees; stops the run."""
    st.title("Not allowed", anchor=False)
    st.error(
        escape_markdown(
            f"{visitor.name} is signed in but has no role in Jobdash: "
            "ask an admin to add you to JOBDASH_ROLES."
        )
    )
    st.button("Sign out", on_click=st.logout)
    st.stop()


def require_identity() -> Identity:
    """The signed-in identity, or the sign-in / not-allowed screen (which stops the run)."""
    visitor = identity_from_streamlit()
    if visitor is None:
        sign_in_screen()
    if isinstance(visitor, NoRole):
        not_allowed_screen(visitor)
    assert isinstance(visitor, Identity)
    return visitor


def identity_badge(identity: Identity) -> None:
    """The signed-in person's name and role, and how to sign out (sidebar or header)."""
    if identity.source == "anonymous":
        return
    st.caption(escape_markdown(f"Signed in as {identity.name} · {identity.role}"))
    if identity.source == "oidc":
        st.button("Sign out", on_click=st.logout, key="jobdash-sign-out")
    else:
        _same_tab_link("Sign out", SIGN_OUT_PATH)
