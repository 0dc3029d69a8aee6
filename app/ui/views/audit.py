"""Recent actions: the audit log of retries, deletes and restores, filterable, CSV export."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from jobdash.app.cache import data
from jobdash.app.read.audit import AUDIT_HEADER, AuditEntry, AuditFilter
from jobdash.app.ui.widgets import columns
from jobdash.app.ui.widgets.downloads import csv_download_button
from jobdash.app.ui.widgets.results import data_or_notice
from jobdash.core.auth.identity import PERMISSIONS, Action
from jobdash.core.jsontypes import Json

# Every action that writes is audited under its name.
ACTIONS = ["(all)", *(action.value for action in Action if PERMISSIONS[action].writes)]
LIMIT = 500
JOB_IDS_SHOWN = 20


def audit_filter_from_page() -> AuditFilter:
    """The filter widgets, seeded from the URL and written back to it."""
    params = st.query_params
    cols = st.columns([1, 1, 1])
    actor = cols[0].text_input("Actor", value=params.get("actor", ""), key="audit_actor").strip()
    current_action = params.get("action", "(all)")
    action = cols[1].selectbox(
        "Action",
        ACTIONS,
        index=ACTIONS.index(current_action) if current_action in ACTIONS else 0,
        key="audit_action",
    )
    raw_job = cols[2].text_input("Job id", value=params.get("job_id", ""), key="audit_job").strip()
    job_id = int(raw_job) if raw_job.isdigit() else None
    if raw_job and job_id is None:
        st.warning("Job id must be a number.")
    chosen = {
        "actor": actor or None,
        "action": None if action == "(all)" else action,
        "job_id": raw_job if job_id else None,
    }
    params.from_dict({k: v for k, v in chosen.items() if v})
    return AuditFilter(actor=chosen["actor"], action=chosen["action"], job_id=job_id)


def _skipped_why(details: dict[str, Json]) -> str:
    reasons = details.get("skipped_by_reason")
    return ", ".join(f"{k}: {v}" for k, v in reasons.items()) if isinstance(reasons, dict) else ""


def audit_frame(rows: Sequence[AuditEntry]) -> pd.DataFrame:
    def jobs(ids: list[int] | None) -> str:
        ids = ids or []
        shown = ", ".join(str(i) for i in ids[:JOB_IDS_SHOWN])
        return shown + (" …" if len(ids) > JOB_IDS_SHOWN else "")

    return pd.DataFrame(
        [
            {
                "at": r["at"],
                "actor": r["actor"],
                "action": r["action"],
                "done": r["done"],
                "skipped": r["skipped"],
                "jobs": jobs(r["job_ids"]),
                "filter": ", ".join(f"{k}={v}" for k, v in (r["filter"] or {}).items()),
                "skipped why": _skipped_why(r["details"] or {}),
            }
            for r in rows
        ]
    )


def main() -> None:
    st.title("Recent actions", anchor=False)
    audit_filter = audit_filter_from_page()
    rows = data_or_notice("Recent actions", data.fetch(data.AUDIT_LOG, audit_filter, LIMIT))
    if rows is None:
        return
    st.text(f"{len(rows):,} actions (newest first, up to {LIMIT})")
    frame = audit_frame(rows)
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config=columns.config(frame.columns),
    )
    csv_download_button(
        "Download CSV", [{k: r.get(k) for k in AUDIT_HEADER} for r in rows], "audit-log"
    )


main()
