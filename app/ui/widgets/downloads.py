"""Download CSV buttons and links of the dashboard's tables.

A table's file is built only when the operator clicks (a callable runs on Streamlit's download
thread), so a large export neither blocks the page nor runs on every refresh. The failed-jobs
CSV, which gets big, is a link to the streaming route instead of a button.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.app.rules.csv_format import CsvData, CsvSource, csv_bytes, csv_file_name
from jobdash.app.web.paths import failed_jobs_csv_url


def records_source(record_type: type, records: Sequence[Any]) -> Callable[[], CsvSource]:
    """A CSV of dataclass records, header from the type (so an empty table still has one).

    Returned as a callable: the file is built only when the operator clicks, not on every tick.
    """
    names = [f.name for f in dataclasses.fields(record_type)]
    rows = list(records)  # the rows shown now, not what a later tick loads

    def source() -> CsvSource:
        return CsvSource(names, ([getattr(r, name) for name in names] for r in rows))

    return source


def csv_download_button(
    label: str,
    data: CsvData,
    table_name: str,
    key: str | None = None,
    disabled: bool = False,
    help: str | None = None,
) -> None:
    """A "Download CSV" button; a callable `data` runs only on click."""
    payload: Callable[[], bytes] | bytes
    if callable(data) and not isinstance(data, CsvSource):
        producer = data

        # Streamlit 1.67 takes only bytes, str or BytesIO from a deferred callable (a file
        # object fails the download): the rows still stream from the database into a spooled
        # file, and the finished file is handed over as bytes.
        def payload() -> bytes:
            return csv_bytes(producer)
    else:
        payload = csv_bytes(data)
    st.download_button(
        label,
        data=payload,
        file_name=csv_file_name(table_name),
        mime="text/csv",
        key=key or f"csv-{table_name}",
        on_click="ignore",
        disabled=disabled,
        help=help,
        icon=":material/download:",
    )


def failed_jobs_csv_link(job_filter: FailedJobFilter, help: str) -> None:
    """ "Download CSV" of every failed job matching `job_filter`, streamed by the export route
    (app/web/routes.py) rather than built in memory for a download button."""
    st.link_button(
        "Download CSV", failed_jobs_csv_url(job_filter), help=help, icon=":material/download:"
    )
