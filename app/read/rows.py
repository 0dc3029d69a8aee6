"""Typed rows for the loaders: each query's row is built by a callable that names its columns'
types (a NamedTuple, a record's dataclass, a typed function), through psycopg's `args_row`, so no
value read from the database reaches a record as Any (mypy's disallow_any_expr, pyproject.toml).

The callable receives the columns positionally, in the query's order; psycopg does not check the
types at run time: the callable's annotations are the query's contract, kept next to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
