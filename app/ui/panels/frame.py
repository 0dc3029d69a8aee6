"""The frame every panel shares: heading, "updated N s ago · every N s", stale notice.

`show_panel` never raises: an exception escaping a fragment during a full run would stop the
whole page, so failures to load or to draw become a notice inside the panel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from jobdash.app.rules.text import clock_utc, escape_markdown, format_interval, freshness_caption
from jobdash.app.ui.data import (
    PanelResult,
    fetch_panel,
    refresh_interval,
)
from jobdash.core.errors import describe_error

logger = logging.getLogger(__name__)


def show_panel(panel: str, title: str, render: Callable[[Any], None]) -> None:
    with st.container(border=True):
        st.subheader(title, anchor=False)
        try:
            interval = refresh_interval(panel)
            result = fetch_panel(panel)
            st.caption(freshness_caption(result.loaded_at, time.time(), interval))
            if result.data is None:
                _show_unavailable(title, result, interval)
                return
            if result.is_stale:
                st.warning(stale_text(result), icon=":material/history:")
            render(result.data)
        except Exception as exc:
            logger.exception("panel %s could not be drawn", panel)
            st.error(f"{title} could not be shown — {escape_markdown(describe_error(exc))}")


def stale_text(result: PanelResult) -> str:
    """The notice as markdown: the reason is escaped, it may quote anything."""
    since = clock_utc(result.stale_since) if result.stale_since is not None else "?"
    return f"stale since {since} — {escape_markdown(result.error or 'unknown error')}"


def _show_unavailable(title: str, result: PanelResult, interval: float) -> None:
    st.error(
        f"{title} unavailable — {escape_markdown(result.error or 'unknown error')}. "
        f"Retrying every {format_interval(interval)}.",
        icon=":material/cloud_off:",
    )
