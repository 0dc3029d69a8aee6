"""CSV cells, neutralisation, streaming."""

from __future__ import annotations

import csv
import io
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd

from jobdash.app.cli.main import main
from jobdash.app.rules.csv_format import (
    CsvSource,
    cell_text,
    csv_bytes,
    csv_file,
    csv_file_name,
    neutralise,
)
from jobdash.app.ui.widgets.downloads import records_source
from tests.actions_helpers import make_failed_jobs
from tests.csv_checks import (
    HOSTILE_TEXTS,
    as_queue_name,
    assert_cells_safe,
    assert_exported,
    parse_csv,
)
from tests.history_helpers import db_now, rollup, run_job
from tests.hostile import HOSTILE


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_neutralise_formula_triggers():
    for text in ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "\nx"]:
        assert neutralise(text) == "'" + text
    for text in ["plain", "", "a=b", "'quoted", " ", "  spaced", "1-2", "Grüße", "日本語", "é=1"]:
        assert neutralise(text) == text


def test_neutralise_behind_blanks_and_in_other_forms():
    """Issue 8 item 7: leading whitespace of any kind, invisible characters, full-width,
    small and super/subscript signs, minus and dash forms."""
    blanks = [" ", "   ", "\xa0", "\u3000", "\u2009", "\u200b", "\ufeff", "\u202e", "\x0b"]
    signs = list("=+-@＝＋－＠﹦﹢﹣﹫⁼⁺₊−–—")
    for blank in ["", *blanks]:
        for sign in signs:
            text = f"{blank}{sign}1+1"
            assert neutralise(text) == "'" + text, repr(text)
    for text in blanks:
        assert neutralise(text + "plain") == text + "plain"


def test_hostile_strings_are_neutralised_in_ui_downloads():
    """The UI's download buttons (every panel and page table) hand csv_bytes their rows."""
    rows = [Row(i, text, datetime(2024, 1, 1, tzinfo=UTC)) for i, text in enumerate(HOSTILE_TEXTS)]
    for data in (
        records_source(Row, rows),
        pd.DataFrame({"id": range(len(rows)), "task": HOSTILE_TEXTS}),
        [{"id": i, "task": text} for i, text in enumerate(HOSTILE_TEXTS)],
    ):
        parsed = parse_csv(csv_bytes(data))
        assert_cells_safe(parsed)
        for row, text in zip(parsed[1:], HOSTILE_TEXTS, strict=True):
            assert_exported(row[1], text)


def test_hostile_strings_are_neutralised_by_jobdash_export_failed(database_url, conn, capsys):
    texts = {}
    for text in HOSTILE_TEXTS:
        queue = as_queue_name(text)
        [job_id] = make_failed_jobs(conn, 1, queue=queue, task=text[:128], message=text)
        texts[str(job_id)] = text
    assert main(["export", "failed", "--database-url", database_url]) == 0
    parsed = parse_csv(capsys.readouterr().out.encode("utf-8"))
    assert_cells_safe(parsed)
    header = parsed[0]
    assert sorted(row[0] for row in parsed[1:]) == sorted(texts)
    for row in parsed[1:]:
        text = texts[row[0]]
        assert_exported(row[header.index("queue")], as_queue_name(text))
        assert_exported(row[header.index("task")], text[:128])
        assert_exported(row[header.index("error_message")], text)


def test_hostile_strings_are_neutralised_by_jobdash_history_csv(database_url, conn, capsys):
    started = db_now(conn) - timedelta(minutes=5)
    for text in HOSTILE_TEXTS:
        queue = as_queue_name(text)
        run_job(conn, queue=queue, task="t", started_at=started, finished_at=started)
    rollup(database_url, backfill=True)
    assert main(["history", "--range", "1h", "--database-url", database_url]) == 0
    parsed = parse_csv(capsys.readouterr().out.encode("utf-8"))
    assert_cells_safe(parsed)
    queues = {row[parsed[0].index("queue")] for row in parsed[1:]}
    for text in HOSTILE_TEXTS:
        queue = as_queue_name(text)
        assert neutralise(queue) in queues or neutralise(queue.replace("\r\n", "\n")) in queues


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
