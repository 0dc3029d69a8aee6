"""HTTP routes beside the Streamlit app: CSV exports streamed straight from the database.

A Streamlit download button needs the whole file in memory first; this route sends rows as a
server-side cursor yields them (about 1,000 rows per chunk), so exporting 100,000 failed jobs
keeps memory flat and never touches a session's script thread. It reads through the same
pool as the panels (statement timeout included), a bounded number at a time (exports.py).
"""

from __future__ import annotations

import itertools
from contextlib import ExitStack

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
from jobdash.app.web.auth_routes import identity_from_request
from jobdash.app.web.exports import EXPORT_SLOTS, ExportResponse, export_limit
from jobdash.app.web.paths import FAILED_JOBS_CSV_PATH
from jobdash.core.auth.identity import Action, require
from jobdash.core.errors import (
    DatabaseError,
    DatabaseNotConfigured,
    FilterError,
    PermissionDenied,
    describe_error,
)
from jobdash.core.pool import connection
from jobdash.core.settings import load_settings


def refusal(request: Request) -> Response | None:
    """401 for nobody signed in, 403 for a role that may not download: the check every route
    makes, the same as the pages' (a download by URL alone is refused)."""
    identity = identity_from_request(request)
    try:
        require(identity, Action.EXPORT_CSV, read_only=False)
    except PermissionDenied as exc:
        status = 401 if identity is None else 403
        return PlainTextResponse(f"{describe_error(exc)}\n", status_code=status)
    return None


def failed_jobs_csv(request: Request) -> Response:
    # A sync endpoint: Starlette runs it, and iterates the body, in its thread pool.
    refused = refusal(request)
    if refused is not None:
        return refused
    try:
        query = dict(request.query_params)
        job_filter = FailedJobFilter.from_query_params(query, only_filter_keys=True)
    except FilterError as exc:
        # A bad value never widens the export to every job.
        return PlainTextResponse(f"bad filter: {describe_error(exc)}\n", status_code=400)
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
            "X-Content-Type-Options": "nosniff",
        },
    )


ROUTES = [Route("/" + FAILED_JOBS_CSV_PATH, failed_jobs_csv)]
