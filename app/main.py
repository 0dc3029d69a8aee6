"""Streamlit entry script (`jobdash serve` runs `streamlit run app/main.py`).

Reads the database URL from JOBDASH_DATABASE_URL (and JOBDASH_APP, optional) through
`jobdash.jobs.settings.load_settings()`, then hands over to the page navigation.
"""

from __future__ import annotations

import streamlit as st

from jobdash.app.db import DatabaseNotConfigured, configured_database_url
from jobdash.app.navigation import build_navigation
from jobdash.app.ui_text import escape_markdown
from jobdash.jobs.settings import ConfigError


def main() -> None:
    st.set_page_config(page_title="Jobdash", page_icon=":material/monitoring:", layout="wide")
    try:
        configured_database_url()
    except (ConfigError, DatabaseNotConfigured) as exc:
        st.title("Background Jobs Dashboard", anchor=False)
        st.error(escape_markdown(str(exc)), icon=":material/settings:")
        st.stop()
    build_navigation().run()


main()
