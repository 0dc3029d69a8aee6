"""Streamlit entry script (what app/web/server.py serves).

Reads the database URL from JOBDASH_DATABASE_URL (and JOBDASH_APP, optional) through
`jobdash.core.settings.load_settings()`, then hands over to the page navigation.
"""

from __future__ import annotations

import streamlit as st

from jobdash.app.rules.text import escape_markdown
from jobdash.app.ui.navigation import build_navigation
from jobdash.core.errors import ConfigError, DatabaseNotConfigured
from jobdash.core.pool import configured_database_url


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
