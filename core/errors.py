"""Every exception Jobdash raises on purpose, and the one way an error becomes a line for the user.

Each class's message is one line meant for the person at the screen: it says what is wrong and,
where there is one, what to do. It never carries a password or a traceback.
"""

from __future__ import annotations

import psycopg


class JobdashError(Exception):
    """Base of Jobdash's own errors; the message is one line for the user."""


class ConfigError(JobdashError):
    """A setting has a value Jobdash cannot use."""


class DatabaseError(JobdashError):
    """The database cannot be used (malformed URL, refused, unknown host, ...)."""


class DatabaseNotConfigured(ConfigError):
    """No database URL was given to the dashboard."""


class DatabaseUnavailable(DatabaseError):
    """The database did not give a connection in time."""


class MigrationError(JobdashError):
    """The database cannot be migrated as it is; the message says what to do."""


class AppLoadError(JobdashError):
    """A dotted path does not lead to a Procrastinate App."""


class FilterError(JobdashError):
    """A filter value (URL, form, command line) cannot be used; it never widens a result."""


class ArchiveError(JobdashError):
    """An archived job's jsonb is not what the archive writes (a damaged or hand-edited row)."""


class ActionError(JobdashError):
    """An action could not run (bad ids, a connection inside a transaction, ...)."""


class ReadOnlyError(ActionError):
    """Actions are disabled (JOBDASH_READ_ONLY=1)."""


class WorkerGaveUp(JobdashError):
    """The worker could not work for longer than its outage tolerance and stopped."""


class PermissionDenied(JobdashError):
    """The signed-in person's role does not allow this (or nobody is signed in)."""


class CommandError(JobdashError):
    """A command cannot do what was asked."""


def one_line(text: object, limit: int = 300) -> str:
    """The first non-empty line of `text`, cut to `limit` characters."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def describe_error(exc: BaseException) -> str:
    """One line saying what went wrong, for notices, CLI errors and HTTP error bodies."""
    if isinstance(exc, JobdashError):
        return one_line(exc) or type(exc).__name__
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedFunction):
        return f"Jobdash's tables are missing or old ({one_line(exc)}): run `jobdash migrate`"
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return "query cancelled: it ran longer than the statement timeout"
    if isinstance(exc, psycopg.OperationalError):
        return f"database error: {one_line(exc) or type(exc).__name__}"
    text = one_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
