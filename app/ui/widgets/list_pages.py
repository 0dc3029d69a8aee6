"""What the two job lists (Jobs, Failed jobs) share around their tables: the current page
(keyset cursors in the session, the page size and the filter in the URL), « Newest / Older »,
the notice for a filter that cannot be applied and the caption of a search no index serves."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from jobdash.app.cache import data
from jobdash.app.rules.text import escape_markdown
from jobdash.app.ui.widgets.results import data_or_notice

Cursor = TypeVar("Cursor")
Page = TypeVar("Page")
PAGE_SIZE_PARAM = "page_size"


def page_size(sizes: Sequence[int]) -> int:
    """The page size in the URL when it is one of `sizes`, else the first of them."""
    try:
        size = int(st.query_params.get(PAGE_SIZE_PARAM, sizes[0]))
    except ValueError:
        size = sizes[0]
    return size if size in sizes else sizes[0]


def page_size_picker(column: DeltaGenerator, sizes: Sequence[int], cursors_key: str) -> None:
    """ "Jobs per page": a new size goes into the URL and starts again from the newest page."""
    current = page_size(sizes)
    size = column.selectbox("Jobs per page", sizes, index=sizes.index(current))
    if size != current:
        st.query_params[PAGE_SIZE_PARAM] = str(size)
        st.session_state[cursors_key] = [None]
        st.rerun()


def set_filter_params(filter_params: dict[str, str]) -> None:
    """The URL holds this filter (and the page size), nothing else."""
    keep = {k: v for k, v in st.query_params.to_dict().items() if k == PAGE_SIZE_PARAM}
    st.query_params.from_dict(keep | filter_params)


def fetch_page(
    title: str,
    source: data.Source[Page],
    job_filter: Hashable,
    sizes: Sequence[int],
    cursor: Hashable,
) -> Page | None:
    """The page of `source` opening at `cursor` (None: the newest) at the URL's page size, or
    None after a notice that it is unavailable."""
    return data_or_notice(title, data.fetch(source, job_filter, page_size(sizes), cursor))


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


def searched_note(searched: str, matched: int, unserved: str, scan: str) -> None:
    """Where a page that did not fill stopped looking: `searched` ("2,000 failed jobs"),
    `unserved` (the filter no index serves), `scan` (the most each page searches)."""
    st.caption(
        f"Searched the newest {searched}: {matched:,} match. No index serves {unserved}, so "
        f"each page searches at most {scan}; “Older »” searches further."
    )
