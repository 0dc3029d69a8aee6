"""The "all matching" actions of the job lists (app/actions/bulk.py): their buttons, their
confirmation, and the progress and Stop of the session's running one."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from jobdash.app.actions.bulk import BulkRun
from jobdash.app.ui.widgets.confirm import Confirmation
from jobdash.app.ui.widgets.feedback import FAILED, REFUSED, Flash, flash
from jobdash.core.errors import JobdashError, describe_error

BULK_KEY = "jobdash_bulk_run"


def running() -> BulkRun | None:
    return st.session_state.get(BULK_KEY)


def keep(run: BulkRun) -> None:
    st.session_state[BULK_KEY] = run


def start(begin: Callable[[], BulkRun]) -> Flash | None:
    """Starts a run and keeps it for the progress bar; a refusal (role, read-only, the
    database) comes back as the flash to show."""
    try:
        keep(begin())
    except JobdashError as exc:
        return Flash(describe_error(exc), REFUSED)
    return None


def filter_words(described: dict[str, str]) -> str:
    """ "queue=emails, task=send", or "no filter": what an all-matching action acts on."""
    return ", ".join(f"{k}={v}" for k, v in described.items()) or "no filter"


def all_button(column: DeltaGenerator, label: str, action: str, disabled: bool = False) -> bool:
    """An "… all matching" button, keyed by the action; disabled while a run is going."""
    return column.button(label, disabled=running() is not None or disabled, key=f"{action}_all")


def all_confirmation(
    verb: str, text: str, caption: str, confirm_label: str, begin: Callable[[], BulkRun]
) -> Confirmation:
    """The confirmation of an all-matching action; confirmed, it starts the run `begin`."""
    return Confirmation(
        title=f"{verb} all matching",
        text=text,
        caption=caption,
        confirm_label=confirm_label,
        run=lambda: start(begin),
        confirm_key="confirm_all",
        cancel_key="cancel_all",
    )


def show() -> None:
    """The progress bar and Stop; nothing when no run is going."""
    if running() is None:
        return
    # Ticks only while a run is going, so an idle page does not rerun every second.
    st.fragment(run_every=1.0)(_ticking)()


def _ticking() -> None:
    run = running()
    if run is None:
        return
    if run.finished:
        st.session_state.pop(BULK_KEY, None)
        if run.error:
            done = run.progress.summary() if run.progress else "nothing done"
            flash(Flash(f"Stopped by an error ({run.error}). {done}", FAILED))
        elif run.result is not None:
            flash(Flash(run.result.summary()))
        st.rerun(scope="app")
        # Typed NoReturn, st.rerun returns when no script run context is there (bare mode).
        return  # type: ignore[unreachable]
    fraction = min(1.0, run.processed / run.total) if run.total else 0.0
    text = f"{run.action}: {run.processed:,} of {run.total:,} processed"
    if run.stop.is_set():
        text += " — stopping after the current batch"
    st.progress(fraction, text=text)
    if st.button("Stop", key="bulk_stop", icon=":material/stop:", disabled=run.stop.is_set()):
        run.stop.set()
