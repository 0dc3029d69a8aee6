"""How a page shows what it read: the data, with a notice when it is stale or unavailable.

Reasons may quote anything (a table name, a host): they go through markdown escaping.
"""

from __future__ import annotations

from typing import TypeVar

import streamlit as st

from jobdash.app.cache.shared_cache import Result
from jobdash.app.rules.text import clock_utc, escape_markdown, format_interval

T = TypeVar("T")


def stale_text(result: Result[object]) -> str:
    """ "stale since HH:MM:SS — <reason>" (UTC clock), as markdown."""
    since = clock_utc(result.stale_since) if result.stale_since is not None else "?"
    return f"stale since {since} — {escape_markdown(result.error or 'unknown error')}"


def show_unavailable(
    title: str, result: Result[object], retry_every_s: float | None = None
) -> None:
    retry = f" Retrying every {format_interval(retry_every_s)}." if retry_every_s else ""
    st.error(
        f"{title} unavailable — {escape_markdown(result.error or 'unknown error')}.{retry}",
        icon=":material/cloud_off:",
    )


def data_or_notice(title: str, result: Result[T], retry_every_s: float | None = None) -> T | None:
    """The result's data (stale data with a warning), or None after an error notice."""
    if result.data is None:
        show_unavailable(title, result, retry_every_s)
        return None
    if result.is_stale:
        st.warning(stale_text(result), icon=":material/history:")
    return result.data
