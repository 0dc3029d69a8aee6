"""Messages that outlive a rerun: an action's summary shown as a toast on the next run.

A toast called right before st.rerun() is never shown, so the message waits in the session.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from jobdash.app.rules.text import escape_markdown

FLASH_KEY = "jobdash_flash"
DONE = ":material/check_circle:"
REFUSED = ":material/block:"
FAILED = ":material/error:"


@dataclass(frozen=True)
class Flash:
    message: str
    icon: str = DONE


def flash(message: Flash) -> None:
    st.session_state[FLASH_KEY] = message


def show_flash(caption: bool = False) -> None:
    """The pending message as a toast (and a caption under the title when asked)."""
    pending: Flash | None = st.session_state.pop(FLASH_KEY, None)
    if pending is not None:
        st.toast(escape_markdown(pending.message), icon=pending.icon)
        if caption:
            st.caption(escape_markdown(pending.message))
