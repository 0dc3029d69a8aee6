"""The URLs of the routes beside the dashboard, for the pages that link to them."""

from __future__ import annotations

from urllib.parse import urlencode

from jobdash.app.read.failed_jobs import FailedJobFilter

FAILED_JOBS_CSV_PATH = "export/failed-jobs.csv"


def failed_jobs_csv_url(job_filter: FailedJobFilter) -> str:
    """Relative link to the streamed CSV of every failed job matching `job_filter`."""
    query = urlencode(job_filter.to_query_params())
    return FAILED_JOBS_CSV_PATH + (f"?{query}" if query else "")
