"""Live updates that never re-render under the operator's hands.

Pages give their fragments `run_every=live.every(seconds)`: None (no timer) while the operator
paused live updates (the sidebar toggle on every page) or while a confirmation is open, so a
table being read or a dialog being answered stays as it is. The choice is made at each full
run; the toggle and the dialog's buttons cause one.
"""

from __future__ import annotations

import streamlit as st

from jobdash.app.ui.widgets import confirm

PAUSED_KEY = "jobdash_live_paused"


def paused() -> bool:
    return bool(st.session_state.get(PAUSED_KEY)) or confirm.pending() is not None


def every(seconds: float) -> float | None:
    return None if paused() else seconds


def toggle() -> None:
    st.sidebar.toggle(
        "Pause live updates",
        key=PAUSED_KEY,
        help="Stop the panels from refreshing (the time of their data is shown)",
    )
