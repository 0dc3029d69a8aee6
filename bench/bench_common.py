"""What the benchmark scripts share: a database URL on the same server, the p95 they print."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict, make_conninfo


def database_url(server: str, dbname: str) -> str:
    """`server`'s URL pointing at database `dbname`."""
    params = conninfo_to_dict(server)
    params["dbname"] = dbname
    return make_conninfo(**params)


def p95(values: list[float]) -> float:
    """The 95th percentile by rank (nearest), as every table in docs/benchmarks*.md reports."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
