"""What the two job lists (Jobs, Failed jobs) share around their tables: keyset paging and
the notice for a filter that cannot be applied."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from jobdash.app.rules.text import escape_markdown

Cursor = TypeVar("Cursor")


def pager(cursors: list[Cursor | None], next_cursor: Cursor | None) -> None:
    """« Newest / Older »: `cursors` (kept in the session) holds where each page opened so far
    starts, None for the newest."""
    nav = st.columns([1, 1, 4])
    if len(cursors) > 1 and nav[0].button("« Newest", key="newest"):
        cursors[:] = [None]
        st.rerun()
    if next_cursor is not None and nav[1].button("Older »", key="older"):
        cursors.append(next_cursor)
        st.rerun()


def filter_refused(exc: Exception, clear: Callable[[], None]) -> None:
    """A bad filter lists nothing (never every job) and says why, with a way out."""
    st.warning(
        f"Filter not applied — {escape_markdown(str(exc))}. Nothing is listed until the "
        "filter is fixed.",
        icon=":material/filter_alt_off:",
    )
    if st.button("Clear the filter", key="clear_filter"):
        clear()
        st.rerun()
