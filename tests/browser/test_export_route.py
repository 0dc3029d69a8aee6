"""The streaming CSV route served beside the dashboard (app/web/routes.py), over real HTTP."""

from __future__ import annotations

import csv
import io
import urllib.error
import urllib.request

import psycopg

from tests.actions_helpers import make_failed_jobs
from tests.csv_checks import (
    HOSTILE_TEXTS,
    as_queue_name,
    assert_cells_safe,
    assert_exported,
    parse_csv,
)


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, _lower(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), error.read()


def _lower(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def test_failed_jobs_csv_streams_every_job_matching_the_filter(
    streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    billing = make_failed_jobs(conn, 2500, queue="billing", message="=cmd|' /C calc'!A0")
    make_failed_jobs(conn, 10, queue="emails")
    base_url = streamlit_server(database_url)

    status, headers, body = _get(f"{base_url}/export/failed-jobs.csv?queue=billing")

    assert status == 200
    assert headers["transfer-encoding"] == "chunked"  # streamed, no length known up front
    assert headers["content-type"].startswith("text/csv")
    assert headers["content-disposition"].startswith('attachment; filename="failed-jobs-')
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    header, data = rows[0], rows[1:]
    assert sorted(int(r[0]) for r in data) == sorted(billing)
    assert {r[header.index("error_message")] for r in data} == {"'=cmd|' /C calc'!A0"}


def test_failed_jobs_csv_says_when_the_database_is_unreachable(streamlit_server) -> None:
    base_url = streamlit_server("postgresql://nobody:secret@127.0.0.1:9/gone")

    status, _headers, body = _get(f"{base_url}/export/failed-jobs.csv")

    assert status == 503
    text = body.decode("utf-8")
    assert text.startswith(
        "export unavailable: database unreachable (cannot connect to 127.0.0.1:9/gone"
    )
    assert "secret" not in text and text.count("\n") == 1


def test_failed_jobs_csv_neutralises_every_hostile_string(
    streamlit_server, database_url: str, conn: psycopg.Connection
) -> None:
    texts = {}
    for text in HOSTILE_TEXTS:
        queue = as_queue_name(text)
        [job_id] = make_failed_jobs(conn, 1, queue=queue, task=text[:128], message=text)
        texts[str(job_id)] = text
    base_url = streamlit_server(database_url)

    status, _headers, body = _get(f"{base_url}/export/failed-jobs.csv")

    assert status == 200
    rows = parse_csv(body)
    assert_cells_safe(rows)
    header = rows[0]
    assert sorted(row[0] for row in rows[1:]) == sorted(texts)
    for row in rows[1:]:
        text = texts[row[0]]
        assert_exported(row[header.index("queue")], as_queue_name(text))
        assert_exported(row[header.index("task")], text[:128])
        assert_exported(row[header.index("error_message")], text)
