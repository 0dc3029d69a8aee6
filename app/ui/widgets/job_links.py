"""Links out of a table that open with one click, in the same tab.

A LinkColumn in a grid takes two clicks (the first selects the cell) and opens a new tab; a
ButtonColumn runs a callback on the first click, and the page then switches itself. The job
is read from the button's label ("#123"), never from the row's position, so a panel that
refreshed between drawing and the click cannot send the operator to another job.

    column_config={"job": job_column("dash_job")}     # cells: job_label(id)
    follow()                                          # after the table, in the same run
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from jobdash.app.ui.navigation import JOB_DETAIL_PAGE, page_file

PENDING = "job_links_pending"  # (url_path, query params) to switch to
_LABEL = re.compile(r"#(\d+)")


def job_label(job_id: int) -> str:
    return f"#{int(job_id)}"


def job_id_of(label: str | None) -> int | None:
    match = _LABEL.fullmatch(label or "")
    return int(match.group(1)) if match else None


def _open_job(key: str, keep_params: bool) -> None:
    click = st.session_state.get(key)
    job_id = job_id_of(click["label"] if click else None)
    if job_id is None:
        return
    if keep_params:  # already on the job page: keep its filters for the way back
        st.query_params["job"] = str(job_id)
        return
    st.session_state[PENDING] = (JOB_DETAIL_PAGE, {"job": str(job_id)})


def job_column(key: str, *, keep_params: bool = False, label: str = "Job") -> Any:
    """A column of job buttons (cells: `job_label(id)`) that open the job's detail."""
    return st.column_config.ButtonColumn(
        label, type="tertiary", alignment="left", help="Open the job", key=key,
        on_click=_open_job, args=(key, keep_params),
    )  # fmt: skip


def page_column(
    key: str, label: str, url_path: str, targets: Callable[[], Sequence[dict[str, str]]]
) -> Any:
    """A column of buttons that open `url_path` with the query params of their row:
    `targets()` returns, row by row, the params of the rows as drawn (a frame kept from the
    run that drew the table, so a refresh cannot shift them)."""

    def opened() -> None:
        click = st.session_state.get(key)
        rows = targets()
        if click is not None and 0 <= click["row"] < len(rows):
            st.session_state[PENDING] = (url_path, dict(rows[click["row"]]))

    return st.column_config.ButtonColumn(
        label, type="tertiary", alignment="left", key=key, on_click=opened
    )


def follow() -> None:
    """Switch to the page a button of this run asked for (a callback cannot switch pages)."""
    pending = st.session_state.pop(PENDING, None)
    if pending is not None:
        url_path, params = pending
        st.switch_page(page_file(url_path), query_params=params)
