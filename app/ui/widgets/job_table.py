"""The selectable table of the job lists (Jobs, Failed jobs and its Recently deleted).

Selection is by job id: the table is a data editor indexed by id with a checkbox column, so
when the listed ids change its ticks reset instead of sliding onto other jobs, and the ids
acted on are the ones the operator saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from jobdash.app.ui.widgets import columns, job_links


def frame(ids: Sequence[int], check: str, cells: dict[str, list[Any]]) -> pd.DataFrame:
    """The checkbox column `check` (unticked), the job's link, then `cells`, indexed by id."""
    table = pd.DataFrame(
        {
            check: [False] * len(ids),
            "job": [job_links.job_label(i) for i in ids],
            **cells,
        },
        index=pd.Index(list(ids), name="id"),
    )
    # An empty list makes an object column, which the checkbox column refuses.
    return table.astype({check: bool})


def selectable(
    table: pd.DataFrame,
    key: str,
    *,
    check: str,
    shown: Sequence[str],
    writable: bool,
    **column_config: Any,
) -> list[int]:
    """A data editor whose only editable column is the checkbox `check` (shown only when
    `writable`); the ticked job ids. `column_config` overrides the columns' defaults."""
    edited = st.data_editor(
        table,
        key=key,
        num_rows="fixed",
        disabled=[c for c in table.columns if c != check] if writable else True,
        # The job first: its link sits at a known place, the tick right of it.
        column_order=[shown[0], *([check] if writable else []), *shown[1:]],
        column_config=columns.config(
            table.columns,
            **{check: st.column_config.CheckboxColumn("✓", width="small")},
            job=job_links.job_column(f"{key}_job", keep_params=True),
            **column_config,
        ),
        hide_index=True,
        width="stretch",
    )
    return [int(i) for i in edited.index[edited[check]]] if len(edited) else []


def selected_button(column: DeltaGenerator, verb: str, action: str, selected: list[int]) -> bool:
    """ "Retry selected (3)", keyed by the action, disabled while nothing is ticked."""
    return column.button(
        f"{verb} selected ({len(selected)})", disabled=not selected, key=f"{action}_selected"
    )
