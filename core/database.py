"""Which PostgreSQL to use, how Jobdash connects to it, and one-line errors when it is unusable.

`connect()` is the one way Jobdash opens a connection (the dashboard's pool passes the same
`connection_kwargs()`): autocommit unless asked, times in UTC, a statement timeout when given,
and an application_name that says which part of Jobdash it is in `pg_stat_activity`.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from jobdash.core.embedded import start_embedded_server
from jobdash.core.errors import DatabaseError, one_line
from jobdash.core.settings import Settings

CONNECT_TIMEOUT_S = 5


def describe(conninfo: str) -> str:
    """`host:port/dbname` of a connection string, without credentials (for messages)."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<unparseable database URL>"
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or '?'}"


def validate_url(conninfo: str) -> str:
    """Raise DatabaseError for a connection string psycopg cannot parse."""
    try:
        conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        # psycopg quotes pieces of the string, which may be the password: drop the quotes' content.
        reason = re.sub(r'"[^"]*"', '"…"', one_line(exc))
        raise DatabaseError(
            f"malformed database URL ({reason}); expected "
            "postgresql://user:password@host:port/dbname or 'key=value' pairs"
        ) from None
    return conninfo


def connection_kwargs(
    *,
    autocommit: bool = True,
    statement_timeout_ms: int | None = None,
    application_name: str = "jobdash",
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> dict[str, Any]:
    """Keyword arguments of psycopg.connect (and of a pool's connections)."""
    options = "-c timezone=UTC"
    if statement_timeout_ms is not None:
        options += f" -c statement_timeout={int(statement_timeout_ms)}"
    return {
        "autocommit": autocommit,
        "options": options,
        "application_name": application_name,
        "connect_timeout": max(1, int(connect_timeout_s)),
    }


def connect(conninfo: str, **kwargs: Any) -> psycopg.Connection:
    """A connection with Jobdash's settings (see `connection_kwargs`); DatabaseError when the
    database cannot be reached, naming host, port and database but never the password."""
    validate_url(conninfo)
    try:
        return psycopg.connect(conninfo, **connection_kwargs(**kwargs))
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to {describe(conninfo)}: {connection_failure(exc)}"
        ) from None


def check_connection(conninfo: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Connect once and run `select 1`; raise DatabaseError naming host, port and database."""
    with connect(conninfo, connect_timeout_s=timeout_s, application_name="jobdash-check") as conn:
        try:
            conn.execute("select 1")
        except psycopg.OperationalError as exc:
            raise DatabaseError(
                f"cannot use {describe(conninfo)}: {connection_failure(exc)}"
            ) from None


def connection_failure(exc: BaseException) -> str:
    """The cause in libpq's message ("connection to server at ... failed: <cause>", then
    hints such as "Is the server running ...?" on the lines after it)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    with_cause = [line for line in lines if "failed: " in line]
    line = with_cause[-1].rsplit("failed: ", 1)[-1] if with_cause else (lines or ["?"])[-1]
    return one_line(line.removeprefix("FATAL:").strip()) or "unknown error"


def resolve_database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's (started on demand) when none is set."""
    if settings.database_url:
        return validate_url(settings.database_url)
    return start_embedded_server(settings.data_dir / "pgdata")
