"""Which PostgreSQL to use, and one-line errors when it is unusable."""

from __future__ import annotations

import re

import psycopg
from psycopg.conninfo import conninfo_to_dict

from jobdash.core.settings import Settings


class DatabaseError(Exception):
    """The database cannot be used; the message is one line for the user, never the password."""


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
        reason = re.sub(r'"[^"]*"', '"…"', str(exc).splitlines()[0]).strip()
        raise DatabaseError(
            f"malformed database URL ({reason}); expected "
            "postgresql://user:password@host:port/dbname or 'key=value' pairs"
        ) from None
    return conninfo


def check_connection(conninfo: str, timeout_s: float = 5) -> None:
    """Connect once and run `select 1`; raise DatabaseError naming host, port and database."""
    validate_url(conninfo)
    try:
        with psycopg.connect(conninfo, connect_timeout=max(1, int(timeout_s))) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as exc:
        reason = _first_line(str(exc))
        raise DatabaseError(f"cannot connect to {describe(conninfo)}: {reason}") from None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # libpq prefixes "connection failed: connection to server at ... failed:"; keep the cause.
    last = lines[-1] if lines else "unknown error"
    return last.split("failed: ")[-1]


def resolve_database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's (started on demand) when none is set."""
    if settings.database_url:
        return validate_url(settings.database_url)
    from jobdash.core.embedded import start_embedded_server

    return start_embedded_server(settings.data_dir / "pgdata")
