"""Streamlit entry script (what app/web/server.py serves).

Reads the database URL from JOBDASH_DATABASE_URL (and JOBDASH_APP, optional) through
`jobdash.core.settings.load_settings()`, then hands over to the page navigation.
"""

from __future__ import annotations

import streamlit as st

from jobdash.app.rules.text import escape_markdown
from jobdash.app.ui import live
from jobdash.app.ui.auth import identity_badge, require_identity
from jobdash.app.ui.navigation import UI_DIR, build_navigation
from jobdash.core.errors import ConfigError, DatabaseNotConfigured
from jobdash.core.pool import configured_database_url

FAVICON = UI_DIR / "favicon.png"


def main() -> None:
    # A file, not a :material/...: icon: that one is fetched from the internet, offline it fails.
    st.set_page_config(page_title="Jobdash", page_icon=str(FAVICON), layout="wide")
    try:
        configured_database_url()
    except (ConfigError, DatabaseNotConfigured) as exc:
        st.title("Background Jobs Dashboard", anchor=False)
        st.error(escape_markdown(str(exc)), icon=":material/settings:")
        st.stop()
    identity = require_identity()
    with st.sidebar:
        identity_badge(identity)
    live.toggle()
    build_navigation().run()


main()
