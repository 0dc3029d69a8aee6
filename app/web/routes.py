"""HTTP routes beside the Streamlit app: CSV exports streamed straight from the database.

A Streamlit download button needs the whole file in memory first; this route sends rows as a
server-side cursor yields them (about 1,000 rows per chunk), so exporting 100,000 failed jobs
keeps memory flat and never touches a session's script thread. It reads through the same
pool as the panels (statement timeout included), a bounded number at a time (exports.py).
"""

from __future__ import annotations

import itertools
from contextlib import ExitStack
from urllib.parse import urlencode

import psycopg
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from jobdash.app.read.failed_jobs import (
    EXPORT_FAILED_HEADER,
    FailedJobFilter,
    export_failed_jobs_rows,
)
from jobdash.app.rules.csv_format import CsvSource, csv_file_name, iter_csv
from jobdash.app.web.exports import EXPORT_SLOTS, ExportResponse, export_limit
from jobdash.core.errors import DatabaseError, DatabaseNotConfigured, describe_error
from jobdash.core.pool import connection
from jobdash.core.settings import load_settings

FAILED_JOBS_CSV_PATH = "export/failed-jobs.csv"


def failed_jobs_csv_url(job_filter: FailedJobFilter) -> str:
    """Relative link to the streamed CSV of every failed job matching `job_filter`."""
    query = urlencode(job_filter.to_query_params())
    return FAILED_JOBS_CSV_PATH + (f"?{query}" if query else "")


def failed_jobs_csv(request: Request) -> Response:
    # A sync endpoint: Starlette runs it, and iterates the body, in its thread pool.
    job_filter = FailedJobFilter.from_query_params(dict(request.query_params))
    settings = load_settings()
    limit = export_limit(settings)
    if not EXPORT_SLOTS.try_acquire(limit):
        return PlainTextResponse(
            f"too many exports running ({limit}); try again\n",
            status_code=503,
            headers={"Retry-After": "10"},
        )
    cleanup = ExitStack()
    cleanup.callback(EXPORT_SLOTS.release)
    try:
        conn = cleanup.enter_context(connection())
        rows = export_failed_jobs_rows(conn, job_filter)
        cleanup.callback(rows.close)  # before the connection goes back: ends the transaction
        # The query runs now, so a failure is a 503 before the 200 and the headers go out
        # (mid-stream, an error could only cut the file short).
        first = list(itertools.islice(rows, 1))
    except (DatabaseNotConfigured, DatabaseError, psycopg.Error) as exc:
        cleanup.close()
        return PlainTextResponse(f"export unavailable: {describe_error(exc)}\n", status_code=503)
    except BaseException:
        cleanup.close()
        raise
    chunks = iter_csv(CsvSource(EXPORT_FAILED_HEADER, itertools.chain(first, rows)))
    cleanup.callback(chunks.close)
    return ExportResponse(
        chunks,
        cleanup,
        stall_timeout_s=settings.export_stall_timeout_s,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{csv_file_name("failed-jobs")}"',
            "Cache-Control": "no-store",
        },
    )


ROUTES = [Route("/" + FAILED_JOBS_CSV_PATH, failed_jobs_csv)]
