"""The frame every dashboard panel shares: heading, "updated N s ago · every N s", stale notice.

`show_panel` never raises: an exception escaping a fragment during a full run would stop the
whole page, so failures to load or to draw become a notice inside the panel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from jobdash.app.cache import data
from jobdash.app.rules.text import escape_markdown, freshness_caption
from jobdash.app.ui import live
from jobdash.app.ui.widgets.results import data_or_notice
from jobdash.core.errors import describe_error

logger = logging.getLogger(__name__)

T = TypeVar("T")


def show_panel(source: data.Source[T], title: str, render: Callable[[T], None]) -> None:
    with st.container(border=True):
        st.subheader(title, anchor=False)
        try:
            interval = data.refresh_interval(source)
            result = data.fetch(source)
            st.caption(freshness_caption(result.loaded_at, time.time(), interval, live.paused()))
            loaded = data_or_notice(title, result, retry_every_s=interval)
            notice = data.instrumentation_notice(source)
            if notice:
                st.warning(escape_markdown(notice), icon=":material/edit_off:")
            if loaded is not None:
                render(loaded)
        except Exception as exc:
            logger.exception("panel %s could not be drawn", source.name)
            st.error(f"{title} could not be shown — {escape_markdown(describe_error(exc))}")
