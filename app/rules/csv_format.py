"""The one CSV writer of every export (download buttons, the streaming route, the CLI): safe
cells, ISO 8601 UTC times, written row by row so memory stays bounded.

Tables come as a DataFrame, a list of dicts or dataclasses, a `CsvSource` (header + row
iterator, e.g. from a server-side cursor), or a zero-argument callable returning one of those.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import tempfile
import unicodedata
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import IO, Any

# Spreadsheets run a cell starting with these as a formula (OWASP "CSV injection"), also
# behind leading blanks or invisible characters they skip, and in full-width or other forms
# they read as the same sign (see `neutralise`).
FORMULA_SIGNS = frozenset("=+-@")
# Tab, CR and LF are triggers in themselves (OWASP): an importer may drop them.
CONTROL_TRIGGERS = ("\t", "\r", "\n")
# Dashes and minus signs NFKC leaves alone but a spreadsheet may take for "-".
MINUS_FORMS = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58")
# Rows written to the temporary file before it spills from memory to disk.
SPOOL_MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class CsvSource:
    """A header and an iterable of rows (sequences in header order), consumed once."""

    header: Sequence[str]
    rows: Iterable[Sequence[Any]]


CsvData = Any  # DataFrame | list[dict] | list[dataclass] | CsvSource | Callable[[], those]


def neutralise(text: str) -> str:
    """`text`, prefixed with `'` when a spreadsheet could read it as a formula.

    A formula sign counts after any leading whitespace (str.isspace: spaces, NBSP,
    ideographic space, ...) and invisible characters (zero-width space, BOM, bidi marks:
    Unicode categories Cf and Cc), and in every form NFKC folds to it (full-width ＝ ＋ － ＠,
    small ﹦ ﹢ ﹣ ﹫, super- and subscript + and =) or that looks like a minus (MINUS_FORMS).
    """
    first = text[:1]
    if "!" <= first <= "~" and first not in FORMULA_SIGNS:
        return text  # the common case: a visible ASCII character that starts no formula
    if text.startswith(CONTROL_TRIGGERS) or _starts_formula(text):
        return "'" + text
    return text


def _starts_formula(text: str) -> bool:
    for char in text:
        if char.isspace() or unicodedata.category(char) in ("Cf", "Cc"):
            continue
        return char in MINUS_FORMS or unicodedata.normalize("NFKC", char)[:1] in FORMULA_SIGNS
    return False


def cell_text(value: Any) -> str:
    """A value as CSV cell text: times in ISO 8601 UTC, JSON for structures, "" for None/NaN."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, datetime):
        when = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)  # a number, not a formula
    if isinstance(value, Mapping | list | tuple):
        return neutralise(json.dumps(value, ensure_ascii=False, default=str, sort_keys=True))
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        if value != value:  # NaT
            return ""
        return cell_text(value.to_pydatetime())
    return neutralise(str(value))


def csv_file_name(table_name: str, now: datetime | None = None) -> str:
    """`<table>-<UTC time>.csv`, e.g. failed-jobs-20240501T120304Z.csv."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in table_name).strip("-")
    return f"{safe or 'table'}-{now.strftime('%Y%m%dT%H%M%SZ')}.csv"


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]], out: IO[str]) -> int:
    """Write header and rows to a text stream, row by row; the number of data rows."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(str(name)) for name in header])
    count = 0
    for row in rows:
        writer.writerow([cell_text(value) for value in row])
        count += 1
    return count


def to_source(data: CsvData) -> CsvSource:
    """Any supported table shape as a CsvSource (a callable is called here)."""
    if callable(data) and not isinstance(data, CsvSource):
        data = data()
    if isinstance(data, CsvSource):
        return data
    if hasattr(data, "itertuples") and hasattr(data, "columns"):  # pandas DataFrame
        frame = data
        header = [str(c) for c in frame.columns]
        return CsvSource(header, frame.itertuples(index=False, name=None))
    rows = list(data)
    if not rows:
        return CsvSource([], [])
    first = rows[0]
    if dataclasses.is_dataclass(first) and not isinstance(first, type):
        header = [f.name for f in dataclasses.fields(first)]
        return CsvSource(header, ([getattr(r, name) for name in header] for r in rows))
    if isinstance(first, Mapping):
        header = list(first.keys())
        return CsvSource(header, ([r.get(name) for name in header] for r in rows))
    raise TypeError(f"cannot export {type(first).__name__} rows as CSV")


def iter_csv(data: CsvData, chunk_rows: int = 1000) -> Generator[bytes, None, None]:
    """The CSV as UTF-8 chunks of `chunk_rows` rows: memory stays bounded however many rows
    the source yields (the streaming export route sends these as they come)."""
    source = to_source(data)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise(str(name)) for name in source.header])
    for count, row in enumerate(source.rows, start=1):
        writer.writerow([cell_text(value) for value in row])
        if count % chunk_rows == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def csv_file(data: CsvData) -> IO[bytes]:
    """The CSV as a rewound binary file (UTF-8), written row by row; large ones spill to disk."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_BYTES, mode="w+b")  # noqa: SIM115 (returned open)
    for chunk in iter_csv(data):
        spool.write(chunk)
    spool.seek(0)
    return spool


def csv_bytes(data: CsvData) -> bytes:
    with csv_file(data) as f:
        return f.read()
