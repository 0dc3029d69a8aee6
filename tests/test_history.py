"""History loaders, the History page (AppTest) and `jobdash history` / `jobdash rollup`."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from jobdash.app.cli.main import main
from jobdash.app.read.history import RANGES, load_history, raw_floor_id, resolution
from jobdash.app.rules.csv_format import csv_bytes
from jobdash.app.ui.navigation import page_file
from jobdash.core.history_tables import (
    HISTOGRAM_BOUNDS_MS,
    histogram_bin,
    percentile_from_histogram,
)
from tests.history_helpers import db_now, rollup, run_job
from tests.hostile import HOSTILE

PAGE = str(page_file("history"))


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


HOSTILE_STRINGS = [s for s in _strings(HOSTILE) if s.strip()][:5]


def test_percentiles_from_histogram():
    counts = [0] * (len(HISTOGRAM_BOUNDS_MS) + 1)
    for ms in [3] * 50 + [150] * 45 + [4000] * 5:
        counts[histogram_bin(ms)] += 1
    p50 = percentile_from_histogram(counts, 0.5, 4000)
    p95 = percentile_from_histogram(counts, 0.95, 4000)
    assert 2 <= p50 <= 5
    assert 100 <= p95 <= 200
    assert percentile_from_histogram(counts, 1.0, 4000) <= 4000
    assert percentile_from_histogram([0] * len(counts), 0.5) is None


def test_every_range_fits_500_points_and_picks_a_table():
    for r in RANGES.values():
        assert r.span / r.bucket <= 500
    assert resolution(RANGES["24h"], 14) == "minute"
    assert resolution(RANGES["90d"], 14) == "hour"
    assert resolution(RANGES["24h"], 0.5) == "hour"


@pytest.fixture
def history_db(conn, database_url):
    now = db_now(conn)
    t0 = now - timedelta(minutes=10)
    for i in range(6):
        run_job(
            conn,
            queue="mail",
            task="t.send",
            started_at=t0,
            finished_at=t0 + timedelta(milliseconds=100 * (i + 1)),
        )
    failed = run_job(
        conn,
        queue="mail",
        task="t.send",
        outcome="failed",
        started_at=t0,
        finished_at=t0 + timedelta(seconds=2),
    )
    old = now - timedelta(days=40)
    run_job(
        conn,
        queue="batch",
        task="t.crunch",
        started_at=old,
        finished_at=old + timedelta(seconds=30),
    )
    conn.execute(
        "INSERT INTO jobdash_job_errors (job_id, attempt, exception_type, message, traceback,"
        " will_retry, recorded_at) VALUES (%s, 1, 'ValueError', %s, '', false, %s)",
        (failed, HOSTILE_STRINGS[0] if HOSTILE_STRINGS else "boom", t0),
    )
    rollup(database_url, backfill=True)
    return database_url


def test_load_history_sums_buckets_and_groups_errors(conn, history_db):
    data = load_history(conn, "24h")
    assert data.status.recording
    assert data.throughput["succeeded"].sum() == 6
    assert data.throughput["failed"].sum() == 1
    assert data.error_groups[["task", "exception_type", "failures"]].values.tolist() == [
        ["t.send", "ValueError", 1]
    ]
    assert data.error_groups["share"].iloc[0] == 1.0
    assert load_history(conn, "90d").throughput["succeeded"].sum() == 7
    assert load_history(conn, "24h", queue="batch").throughput.empty
    assert load_history(conn, "90d", task="t.crunch").throughput["succeeded"].sum() == 1


def test_last_hour_from_raw_events_when_nothing_records(conn, database_url):
    t0 = db_now(conn) - timedelta(minutes=5)
    for _ in range(3):
        run_job(conn, started_at=t0, finished_at=t0 + timedelta(seconds=1))
    data = load_history(conn, "1h")
    assert not data.status.recording
    assert data.source == "raw"
    assert data.throughput["succeeded"].sum() == 3
    # The minute they finished in (t0 late in a minute: started in one row, finished in the next).
    finished = data.throughput[data.throughput["succeeded"] > 0]
    assert finished["p50_ms"].iloc[0] == pytest.approx(1000, rel=0.5)


def test_raw_fallback_reads_from_the_marks_floor(conn, database_url):
    now = db_now(conn)
    run_job(conn, started_at=now - timedelta(hours=3), finished_at=now - timedelta(hours=3))
    # What a rollup that stopped two hours ago left: every event before it has a lower id.
    conn.execute(
        "INSERT INTO jobdash_rollup_marks SELECT %s, max(id) FROM procrastinate_events",
        (now - timedelta(hours=2),),
    )
    t0 = now - timedelta(minutes=5)
    run_job(conn, started_at=t0, finished_at=t0 + timedelta(seconds=1))
    assert raw_floor_id(conn, now - timedelta(hours=1)) > 0
    data = load_history(conn, "1h")
    assert data.source == "raw"
    assert data.throughput["succeeded"].sum() == 1


def test_chart_csv_matches_its_data(conn, history_db):
    data = load_history(conn, "24h")
    rows = list(csv.DictReader(io.StringIO(csv_bytes(data.throughput).decode("utf-8-sig"))))
    assert len(rows) == len(data.throughput)
    assert [int(r["succeeded"]) for r in rows] == data.throughput["succeeded"].tolist()
    assert [int(r["failed"]) for r in rows] == data.throughput["failed"].tolist()
    p95 = [float(r["p95_ms"]) if r["p95_ms"] else math.nan for r in rows]
    assert p95 == pytest.approx(data.throughput["p95_ms"].astype(float).tolist(), nan_ok=True)


@pytest.mark.parametrize("range_name", list(RANGES))
def test_history_page_renders_every_range(history_db, monkeypatch, range_name):
    monkeypatch.setenv("JOBDASH_DATABASE_URL", history_db)
    at = AppTest.from_file(str(PAGE), default_timeout=30)
    at.query_params["range"] = range_name
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Throughput history"]
    subheaders = [s.value for s in at.subheader]
    assert subheaders[:5] == [
        "Throughput",
        "Failure rate",
        "Duration p50 / p95",
        "Queue depth",
        "Queue latency",
    ]
    assert at.query_params["range"] == [range_name] or at.query_params["range"] == range_name
    assert not at.warning  # the backfill just ran: history is being recorded


def test_history_page_filters_from_url_and_links_error_groups(history_db, monkeypatch):
    monkeypatch.setenv("JOBDASH_DATABASE_URL", history_db)
    at = AppTest.from_file(str(PAGE), default_timeout=30)
    at.query_params["range"] = "24h"
    at.query_params["queue"] = "mail"
    at.run()
    assert not at.exception
    assert at.selectbox(key="history_queue").value == "mail"
    table = at.dataframe[0].value
    # Each group's button opens the failed-jobs page with the filters of the row as drawn.
    assert table["failed_jobs"].tolist() == ["Open"]
    assert at.session_state["history_error_group_targets"] == [
        {"task": "t.send", "exception_type": "ValueError"}
    ]
    if HOSTILE_STRINGS:
        assert table["example_message"].tolist() == [HOSTILE_STRINGS[0][:1000]]


def test_history_page_says_when_not_recording(database_url, monkeypatch):
    monkeypatch.setenv("JOBDASH_DATABASE_URL", database_url)
    at = AppTest.from_file(str(PAGE), default_timeout=30)
    at.run()
    assert not at.exception
    assert any("not being recorded" in w.value for w in at.warning)


def test_cli_history_csv_and_json(history_db, capsys):
    assert main(["history", "--range", "24h", "--database-url", history_db]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    mail = [r for r in rows if r["queue"] == "mail"]
    assert sum(int(r["succeeded"] or 0) for r in mail) == 6
    assert sum(int(r["failed"] or 0) for r in mail) == 1

    assert (
        main(
            [
                "history",
                "--range",
                "90d",
                "--task",
                "t.crunch",
                "--format",
                "json",
                "--database-url",
                history_db,
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert sum(r["succeeded"] or 0 for r in data) == 1
    assert {r["queue"] for r in data if r["succeeded"]} == {"batch"}


def test_cli_rejects_unknown_range(history_db, capsys):
    assert main(["history", "--range", "2y", "--database-url", history_db]) == 2
    err = capsys.readouterr().err
    assert "unknown range '2y'" in err and "Traceback" not in err


def test_cli_rollup_and_backfill(conn, database_url, capsys):
    old = db_now(conn) - timedelta(days=2)
    run_job(conn, started_at=old, finished_at=old + timedelta(seconds=1))
    assert main(["rollup", "--database-url", database_url]) == 0
    assert conn.execute("SELECT count(*) FROM jobdash_history_minute").fetchone() == (0,)
    capsys.readouterr()
    assert main(["rollup", "--backfill", "--database-url", database_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"backfilled {old:%Y-%m-%d %H:%M} to ")
    assert "(1 of 3)" in lines[0] or "(1 of 2)" in lines[0]  # 2 days back: 3 days, or 2
    assert "minute buckets" in lines[-1] and not lines[-1].startswith("backfilled")
    assert conn.execute("SELECT sum(succeeded) FROM jobdash_history_minute").fetchone() == (1,)
