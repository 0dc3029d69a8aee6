"""The one confirmation dialog for destructive and bulk actions.

A page asks with `request(Confirmation(...))`; the dialog stays open across reruns and panel
ticks until the operator confirms or cancels. What it runs is fixed when it is asked (the job
ids the operator saw), never re-read when the button is pressed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from jobdash.app.ui.widgets.feedback import Flash, flash

PENDING_KEY = "jobdash_pending_confirmation"
SAMPLE_IDS = 10


@dataclass(frozen=True)
class Confirmation:
    title: str
    text: str  # plain text: it may name queues and tasks
    confirm_label: str
    run: Callable[[], Flash | None]
    caption: str | None = None
    confirm_key: str = "confirm"
    cancel_key: str = "cancel"


def describe_ids(ids: list[int]) -> str:
    """ "1, 2, 3 and 40 more" """
    sample = ", ".join(str(i) for i in ids[:SAMPLE_IDS])
    more = f" and {len(ids) - SAMPLE_IDS:,} more" if len(ids) > SAMPLE_IDS else ""
    return sample + more


def ids_confirmation(
    verb: str, ids: list[int], caption: str | None, run: Callable[[], Flash | None]
) -> Confirmation:
    """ "Retry exactly 3 jobs: 1, 2, 3": an action on the ticked jobs, named by id."""
    noun = "job" if len(ids) == 1 else "jobs"
    return Confirmation(
        title=f"{verb} {noun}",
        text=f"{verb} exactly {len(ids):,} {noun}: {describe_ids(ids)}",
        caption=caption,
        confirm_label=f"{verb} {len(ids):,} {noun}",
        run=run,
        confirm_key="confirm_ids",
        cancel_key="cancel_ids",
    )


def request(confirmation: Confirmation) -> None:
    """Open the dialog (from a fragment too: the full rerun also holds the live panels)."""
    st.session_state[PENDING_KEY] = confirmation
    st.rerun(scope="app")


def pending() -> Confirmation | None:
    return st.session_state.get(PENDING_KEY)


def _forget() -> None:
    st.session_state.pop(PENDING_KEY, None)


@st.dialog("Confirm", on_dismiss=_forget)
def _dialog() -> None:
    pending: Confirmation | None = st.session_state.get(PENDING_KEY)
    if pending is None:
        return
    st.subheader(pending.title, anchor=False)
    st.text(pending.text)
    if pending.caption:
        st.caption(pending.caption)
    left, right = st.columns(2)
    if left.button(pending.confirm_label, type="primary", key=pending.confirm_key):
        _forget()
        message = pending.run()
        if message is not None:
            flash(message)
        st.rerun()
    if right.button("Cancel", key=pending.cancel_key):
        _forget()
        st.rerun()


def show_pending() -> None:
    """Draw the dialog when a confirmation is pending (call once per page run)."""
    if st.session_state.get(PENDING_KEY) is not None:
        _dialog()
