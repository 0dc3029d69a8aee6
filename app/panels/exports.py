"""What each dashboard table exports as CSV: the loader records themselves (the snapshot
contract's field names, ISO 8601 UTC times), or every failed job streamed from the database;
built only when the operator clicks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from app.csv_export import CsvSource
from app.failed_queries import EXPORT_FAILED_HEADER, FailedJobFilter, export_failed_jobs_rows


def records_source(record_type: type, records: Sequence[Any]) -> Callable[[], CsvSource]:
    """A CSV of dataclass records, header from the type (so an empty table still has one).

    Returned as a callable: the file is built only when the operator clicks, not on every tick.
    """
    names = [f.name for f in dataclasses.fields(record_type)]
    rows = list(records)  # the rows shown now, not what a later tick loads

    def source() -> CsvSource:
        return CsvSource(names, ([getattr(r, name) for name in names] for r in rows))

    return source


def all_failed_jobs_source(database_url: str) -> Callable[[], CsvSource]:
    """Every failed job (not only the ones listed), streamed from a server-side cursor."""

    def source() -> CsvSource:
        return CsvSource(
            EXPORT_FAILED_HEADER, export_failed_jobs_rows(database_url, FailedJobFilter())
        )

    return source
