"""Hostile text through every CSV Jobdash writes: a check of the cells that does not use the
neutraliser it checks."""

from __future__ import annotations

import csv
import io
import re

from jobdash.app.rules.csv_format import neutralise
from tests.hostile import HOSTILE

# Every hostile string (the formula variants of issue 8 item 7 included), each short enough
# for a queue or task name column.
HOSTILE_TEXTS = [v for group in HOSTILE.values() if isinstance(group, list) for v in group]

_LEADING_INVISIBLE = re.compile(r"^[\s\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]*")
_SIGNS = set("=+-@＝＋－＠﹦﹢﹣﹫⁺⁼₊₌−–—‐‑‒―")


def spreadsheet_would_run(cell: str) -> bool:
    """Whether a spreadsheet could take `cell` for a formula (a `'` first makes it text)."""
    if cell.startswith("'"):
        return False
    if cell[:1] in ("\t", "\r", "\n"):
        return True
    return _LEADING_INVISIBLE.sub("", cell)[:1] in _SIGNS


def parse_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def assert_cells_safe(rows: list[list[str]]) -> None:
    unsafe = [cell for row in rows for cell in row if spreadsheet_would_run(cell)]
    assert not unsafe, unsafe


def assert_exported(cell: str, original: str) -> None:
    """The cell is the original text, neutralised (line ends may be normalised)."""
    assert cell in (neutralise(original), neutralise(original.replace("\r\n", "\n"))), (
        cell,
        original,
    )


def as_queue_name(text: str) -> str:
    """`text` cut to what a queue name can hold (Procrastinate's NOTIFY channel: 63 bytes)."""
    return text.encode("utf-8")[:40].decode("utf-8", "ignore")
