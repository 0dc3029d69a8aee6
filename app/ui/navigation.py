"""The dashboard's pages (modules in app/views/). To add a page, add one line to `PAGES`.

The folder is not called `pages/`: Streamlit would treat that as an old-style pages folder
for the first visit of a fresh server, before `st.navigation` has run once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage

UI_DIR = Path(__file__).resolve().parent
# The Streamlit script of the dashboard (what the server runs for every session).
MAIN_SCRIPT = UI_DIR / "main.py"


@dataclass(frozen=True)
class PageEntry:
    file: str  # relative to app/ui/
    title: str
    url_path: str
    icon: str | None = None
    default: bool = False


PAGES: list[PageEntry] = [
    PageEntry("views/dashboard.py", "Dashboard", "dashboard", ":material/monitoring:", True),
    PageEntry("views/jobs.py", "Jobs", "jobs", ":material/work:"),
    PageEntry("views/failed_jobs.py", "Failed jobs", "failed_jobs", ":material/error:"),
    PageEntry("views/queues.py", "Queues", "queues", ":material/view_list:"),
    PageEntry("views/locks.py", "Locks", "locks", ":material/lock:"),
    PageEntry("views/history.py", "History", "history", ":material/timeline:"),
    PageEntry("views/audit.py", "Recent actions", "audit", ":material/history:"),
    PageEntry("views/alerts.py", "Alerts", "alerts", ":material/notifications:"),
]


# The page that shows any job's detail (`?job=ID`), whatever its state.
JOB_DETAIL_PAGE = "jobs"


def page_file(url_path: str) -> Path:
    """The file of a listed page, for `st.page_link`."""
    return next(UI_DIR / entry.file for entry in PAGES if entry.url_path == url_path)


def build_navigation() -> StreamlitPage:
    pages = [
        st.Page(
            UI_DIR / entry.file,
            title=entry.title,
            icon=entry.icon,
            url_path=entry.url_path,
            default=entry.default,
        )
        for entry in PAGES
    ]
    return st.navigation(pages, position="sidebar")
