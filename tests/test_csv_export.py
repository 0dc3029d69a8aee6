"""CSV cells, neutralisation, streaming."""

from __future__ import annotations

import csv
import io
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd

from jobdash.app.rules.csv_format import (
    CsvSource,
    cell_text,
    csv_bytes,
    csv_file,
    csv_file_name,
    neutralise,
)
from tests.hostile import HOSTILE


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_neutralise_formula_triggers():
    for text in ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]:
        assert neutralise(text) == "'" + text
    for text in ["plain", "", "a=b", "'quoted"]:
        assert neutralise(text) == text


def test_cell_text():
    assert cell_text(None) == ""
    assert (
        cell_text(datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))))
        == "2024-05-01T10:00:00Z"
    )
    assert cell_text(-5) == "-5"
    assert cell_text({"a": "=1"}) == '{"a": "=1"}'
    assert cell_text(["=x"]) == '["=x"]'
    assert cell_text(True) == "true"


def test_file_name():
    assert (
        csv_file_name("failed jobs", datetime(2024, 5, 1, 12, 3, 4, tzinfo=UTC))
        == "failed-jobs-20240501T120304Z.csv"
    )


@dataclass
class Row:
    id: int
    task: str
    at: datetime


def test_shapes_and_hostile_strings_round_trip():
    values = [v for group in HOSTILE.values() if isinstance(group, list) for v in group]
    assert values
    at = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [Row(i, v, at) for i, v in enumerate(values)]
    parsed = parse(csv_bytes(rows))
    assert parsed[0] == ["id", "task", "at"]
    assert len(parsed) == len(values) + 1
    for (_, text, when), value in zip(parsed[1:], values, strict=True):
        assert text == neutralise(value.replace("\r\n", "\n")) or text == neutralise(value)
        assert when == "2024-01-01T00:00:00Z"
    frame = pd.DataFrame({"a": ["=1+1", "x"], "t": [at, at]})
    assert parse(csv_bytes(frame)) == [
        ["a", "t"],
        ["'=1+1", "2024-01-01T00:00:00Z"],
        ["x", "2024-01-01T00:00:00Z"],
    ]
    assert parse(csv_bytes(lambda: [{"k": "@x"}])) == [["k"], ["'@x"]]
    assert parse(csv_bytes([])) == [[]] or csv_bytes([]) == b"\r\n"


def test_streams_100k_rows_without_holding_them(monkeypatch):
    # spill to disk early
    monkeypatch.setattr("jobdash.app.rules.csv_format.SPOOL_MAX_BYTES", 256 * 1024)

    def rows():
        for i in range(100_000):
            yield (i, f"task-{i}", "=cmd" if i % 2 else "ok")

    tracemalloc.start()
    f = csv_file(CsvSource(["id", "task", "note"], rows()))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000  # neither the rows nor the 2.4 MB of CSV were all in memory
    data = f.read()
    parsed = parse(data)
    assert len(parsed) == 100_001 and parsed[2] == ["1", "task-1", "'=cmd"]
