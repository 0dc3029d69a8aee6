"""What each dashboard table exports as CSV: the loader records themselves (the snapshot
contract's field names, ISO 8601 UTC times, built only when the operator clicks), or a link
to every failed job streamed from the database."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.app.rules.csv_format import CsvSource
from jobdash.app.web.routes import failed_jobs_csv_url


def records_source(record_type: type, records: Sequence[Any]) -> Callable[[], CsvSource]:
    """A CSV of dataclass records, header from the type (so an empty table still has one).

    Returned as a callable: the file is built only when the operator clicks, not on every tick.
    """
    names = [f.name for f in dataclasses.fields(record_type)]
    rows = list(records)  # the rows shown now, not what a later tick loads

    def source() -> CsvSource:
        return CsvSource(names, ([getattr(r, name) for name in names] for r in rows))

    return source


def failed_jobs_csv_link(job_filter: FailedJobFilter, help: str) -> None:
    """"Download CSV" of every failed job matching `job_filter`, streamed by the export route
    (app/export_routes.py) rather than built in memory for a download button."""
    st.link_button(
        "Download CSV", failed_jobs_csv_url(job_filter), help=help, icon=":material/download:"
    )
