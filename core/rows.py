"""Typed rows for the loaders, the actions, uninstall and the demo seed: each query's row is
built by a callable that names its columns' types (a NamedTuple, a record's dataclass, a typed
function), through psycopg's `args_row`, so no value read from the database reaches a record as
Any (mypy's disallow_any_expr, pyproject.toml). In core because core and the worker side may
not import app.

The callable receives the columns positionally, in the query's order; psycopg does not check the
types at run time: the callable's annotations are the query's contract, kept next to it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from datetime import UTC, datetime
from typing import LiteralString, TypeVar, overload

import psycopg
from psycopg.rows import args_row

T = TypeVar("T")
Params = Mapping[str, object] | Sequence[object]


def fetch_all(
    conn: psycopg.Connection,
    row: Callable[..., T],
    query: LiteralString,
    params: Params | None = None,
) -> list[T]:
    """Every row of `query`, each made by `row`."""
    with typed_cursor(conn, row) as cur:
        return cur.execute(query, params).fetchall()


def fetch_optional(
    conn: psycopg.Connection,
    row: Callable[..., T],
    query: LiteralString,
    params: Params | None = None,
) -> T | None:
    """The first row of `query` made by `row`, None when there is none."""
    with typed_cursor(conn, row) as cur:
        return cur.execute(query, params).fetchone()


def fetch_one(
    conn: psycopg.Connection,
    row: Callable[..., T],
    query: LiteralString,
    params: Params | None = None,
) -> T:
    """The first row of a query that always returns one (an aggregate, `SELECT now()`)."""
    found = fetch_optional(conn, row, query, params)
    if found is None:
        raise LookupError("the query returned no row")
    return found


def typed_cursor(conn: psycopg.Connection, row: Callable[..., T]) -> psycopg.Cursor[T]:
    """A cursor whose rows `row` makes, for statements sent together in a pipeline."""
    return conn.cursor(row_factory=args_row(row))


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: datetime | None) -> datetime | None: ...
def utc(value: datetime | None) -> datetime | None:
    """A timestamp column in UTC, whatever the session's time zone (None stays None)."""
    return value.astimezone(UTC) if value is not None else None


def iter_server_side(
    conn: psycopg.Connection,
    row: Callable[..., T],
    query: LiteralString,
    params: Params | None = None,
    chunk_rows: int = 2000,
) -> Generator[T, None, None]:
    """Rows of `query` made by `row`, from a server-side cursor on `conn`, fetched
    `chunk_rows` at a time (exports: memory stays flat however many rows there are).

    The cursor lives in a transaction of its own; closing the generator early ends it.
    """
    with (
        conn.transaction(),
        conn.cursor(name="jobdash_export", row_factory=args_row(row)) as cur,
    ):
        cur.itersize = chunk_rows
        cur.execute(query, params)
        yield from cur
