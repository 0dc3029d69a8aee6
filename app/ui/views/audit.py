"""Recent actions: the audit log of retries, deletes and restores, filterable, CSV export."""

from __future__ import annotations

import pandas as pd
import psycopg
import streamlit as st

from jobdash.app.read.failed_jobs import AUDIT_HEADER, list_audit_log
from jobdash.app.rules.csv_format import csv_download_button
from jobdash.app.rules.text import escape_markdown
from jobdash.core.errors import DatabaseNotConfigured, DatabaseUnavailable, describe_error
from jobdash.core.pool import connection

ACTIONS = ["(all)", "retry", "delete", "restore", "retry_stalled"]
LIMIT = 500


def main() -> None:
    st.title("Recent actions", anchor=False)
    params = st.query_params
    cols = st.columns([1, 1, 1])
    actor = (
        cols[0].text_input("Actor", value=params.get("actor", ""), key="audit_actor").strip()
        or None
    )
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
    params.from_dict(
        {
            k: v
            for k, v in {
                "actor": actor,
                "action": None if action == "(all)" else action,
                "job_id": raw_job if job_id else None,
            }.items()
            if v
        }
    )
    try:
        with connection() as conn:
            rows = list_audit_log(
                conn,
                actor=actor,
                action=None if action == "(all)" else action,
                job_id=job_id,
                limit=LIMIT,
            )
    except (DatabaseUnavailable, DatabaseNotConfigured, psycopg.Error) as exc:
        st.error(escape_markdown(describe_error(exc)))
        return
    st.text(f"{len(rows):,} actions (newest first, up to {LIMIT})")
    frame = pd.DataFrame(
        [
            {
                "at": r["at"],
                "actor": r["actor"],
                "action": r["action"],
                "done": r["done"],
                "skipped": r["skipped"],
                "jobs": ", ".join(str(i) for i in (r["job_ids"] or [])[:20])
                + (" …" if len(r["job_ids"] or []) > 20 else ""),
                "filter": ", ".join(f"{k}={v}" for k, v in (r["filter"] or {}).items()),
                "skipped why": ", ".join(
                    f"{k}: {v}"
                    for k, v in (r["details"] or {}).get("skipped_by_reason", {}).items()
                ),
            }
            for r in rows
        ]
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "at": st.column_config.DatetimeColumn(
                "At (UTC)", format="YYYY-MM-DD HH:mm:ss", timezone="UTC"
            )
        },
    )
    csv_download_button(
        "Download CSV", [{k: r[k] for k in AUDIT_HEADER} for r in rows], "audit-log"
    )


main()
