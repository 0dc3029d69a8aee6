"""What the benchmark scripts share: a database URL on the same server, scratch databases made
and dropped, the p95 they print."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def database_url(server: str, dbname: str) -> str:
    """`server`'s URL pointing at database `dbname`."""
    params = conninfo_to_dict(server)
    params["dbname"] = dbname
    return make_conninfo(**params)


def drop_database(server: str, dbname: str) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


def create_database(server: str, dbname: str, template: str | None = None) -> str:
    """A new empty database `dbname` (one an interrupted run left behind is dropped first);
    its URL."""
    drop_database(server, dbname)
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
    if template is not None:
        create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(create)
    return database_url(server, dbname)


@contextmanager
def scratch_database(server: str, dbname: str) -> Iterator[str]:
    """`create_database`, dropped again when the block ends however it ends."""
    url = create_database(server, dbname)
    try:
        yield url
    finally:
        drop_database(server, dbname)


def p95(values: list[float]) -> float:
    """The 95th percentile by rank (nearest), as every table in docs/benchmarks*.md reports."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
