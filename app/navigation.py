"""The dashboard's pages. To add a page, add ONE `PageEntry` line to `PAGES`.

A page is listed only when its file exists, so the app runs while pages are being written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage

APP_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PageEntry:
    file: str  # relative to app/
    title: str
    url_path: str
    icon: str | None = None
    default: bool = False


PAGES: list[PageEntry] = [
    PageEntry("pages/dashboard.py", "Dashboard", "dashboard", ":material/monitoring:", True),
    PageEntry("pages/failed_jobs.py", "Failed jobs", "failed_jobs", ":material/error:"),
    PageEntry("pages/history.py", "History", "history", ":material/timeline:"),
    PageEntry("pages/audit.py", "Recent actions", "audit", ":material/history:"),
]


def available_pages() -> list[PageEntry]:
    return [entry for entry in PAGES if (APP_DIR / entry.file).exists()]


def page_file(url_path: str) -> Path | None:
    """The file of a listed page (for `st.page_link`), or None when that page does not exist."""
    for entry in available_pages():
        if entry.url_path == url_path:
            return APP_DIR / entry.file
    return None


def build_navigation() -> StreamlitPage:
    pages = [
        st.Page(
            APP_DIR / entry.file,
            title=entry.title,
            icon=entry.icon,
            url_path=entry.url_path,
            default=entry.default,
        )
        for entry in available_pages()
    ]
    return st.navigation(pages, position="sidebar")
