"""HTTP routes beside the Streamlit app: CSV exports streamed straight from the database.

A Streamlit download button needs the whole file in memory first; this route sends rows as a
server-side cursor yields them (about 1,000 rows per chunk), so exporting 100,000 failed jobs
keeps memory flat and never touches a session's script thread.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from jobdash.app.read.failed_jobs import (
    EXPORT_FAILED_HEADER,
    FailedJobFilter,
    export_failed_jobs_rows,
)
from jobdash.app.rules.csv_format import CsvSource, csv_file_name, iter_csv
from jobdash.app.web.paths import FAILED_JOBS_CSV_PATH
from jobdash.core.database import check_connection
from jobdash.core.errors import DatabaseError, DatabaseNotConfigured
from jobdash.core.pool import configured_database_url


def failed_jobs_csv(request: Request) -> Response:
    # A sync endpoint: Starlette runs it, and iterates the body, in its thread pool.
    job_filter = FailedJobFilter.from_query_params(dict(request.query_params))
    try:
        database_url = configured_database_url()
        # Fail before the 200 and the headers go out: mid-stream, an error could only cut
        # the file short.
        check_connection(database_url)
    except (DatabaseNotConfigured, DatabaseError) as exc:
        return PlainTextResponse(f"export unavailable: {exc}\n", status_code=503)
    rows = export_failed_jobs_rows(database_url, job_filter)
    return StreamingResponse(
        iter_csv(CsvSource(EXPORT_FAILED_HEADER, rows)),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{csv_file_name("failed-jobs")}"',
            "Cache-Control": "no-store",
        },
    )


ROUTES = [Route("/" + FAILED_JOBS_CSV_PATH, failed_jobs_csv)]
