"""`jobdash uninstall`: remove every object named jobdash_*, found in the catalog (not from a
list), leaving Procrastinate's schema as Procrastinate created it.

Order, so that workers are never blocked for long: our migration ledger first (an interrupted
uninstall then reads as "migrations pending", and `migrate` or `uninstall` completes it);
then what sits on Procrastinate's tables — triggers (each in its own short transaction with
lock_timeout, retried), indexes (DROP INDEX CONCURRENTLY), constraints and columns — so the
queue stops calling our code; then our own views, tables, sequences, functions and
procedures, and types. Nothing is dropped with CASCADE: an object of the team's that
depends on ours stops the uninstall with PostgreSQL's message instead of being dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import LiteralString, NamedTuple

import psycopg
from psycopg import sql

from jobdash.core.database import connect
from jobdash.core.errors import MigrationError, one_line
from jobdash.core.rows import fetch_all
from jobdash.core.schema.runner import Retry, advisory_lock, run_locked
from jobdash.core.settings import load_settings

Notify = Callable[[str], None]

# Ours: named jobdash_*, in a schema of the search path (where migrate created them).
_OURS = r"like 'jobdash\_%'"
_IN_PATH = "n.nspname = any(current_schemas(false))"


@dataclass(frozen=True)
class Removal:
    kind: str  # "trigger", "index", "constraint", "column", "view", "table", ...
    name: str  # for people: "jobdash_record_finish on procrastinate_events"
    statement: sql.Composed | None = None  # None: dropped with the others of its kind
    object: sql.Composable | None = None  # what `DROP <KIND> IF EXISTS` names
    table: str | None = None  # Procrastinate's table it locks, if any
    lock: str | None = None
    concurrently: bool = False

    def wants(self) -> dict[str, str]:
        """The table of Procrastinate's it locks and the mode (for run_locked), if any."""
        return {self.table: self.lock} if self.table and self.lock else {}


# Our own objects, dropped one statement per kind (so that dependencies among them, such as
# a view over a table, are no obstacle), in this order.
GROUPED_KINDS = ["materialized view", "view", "table", "sequence", "routine", "domain", "type"]


class _Named(NamedTuple):
    schema: str
    name: str


class _OnTable(NamedTuple):
    schema: str
    table: str
    name: str


class _Routine(NamedTuple):
    schema: str
    name: str
    args: str


class _Type(NamedTuple):
    schema: str
    name: str
    domain: bool


@dataclass(frozen=True)
class _Attached:
    """A kind of object of ours on a table of Procrastinate's, dropped one by one."""

    kind: str
    query: LiteralString  # its (schema, table, name) rows
    drop: str  # {name}, {table} (schema-qualified) and {qualified} (the object's own name)
    word: str  # "trigger_x on table", "column_x of table"
    lock: str
    concurrently: bool = False


_LEDGER = (
    "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
    f" where c.relname = 'jobdash_schema_migrations' and c.relkind = 'r' and {_IN_PATH}"
)

# What sits on Procrastinate's tables, in the order it goes.
_ATTACHED = (
    _Attached(
        "trigger",
        "select n.nspname, c.relname, t.tgname from pg_trigger t"
        " join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace"
        f" where not t.tgisinternal and t.tgname {_OURS} and c.relname not {_OURS}"
        f" and {_IN_PATH} order by 2, 3",
        "DROP TRIGGER IF EXISTS {name} ON {table}",
        "on",
        "ACCESS EXCLUSIVE",
    ),
    _Attached(
        "index",
        "select n.nspname, t.relname, i.relname from pg_index x"
        " join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid"
        " join pg_namespace n on n.oid = i.relnamespace"
        f" where i.relname {_OURS} and t.relname not {_OURS} and {_IN_PATH}"
        " and not exists (select 1 from pg_constraint k where k.conindid = x.indexrelid)"
        " order by 2, 3",
        "DROP INDEX CONCURRENTLY IF EXISTS {qualified}",
        "on",
        "SHARE UPDATE EXCLUSIVE",
        concurrently=True,
    ),
    _Attached(
        "constraint",
        "select n.nspname, c.relname, k.conname from pg_constraint k"
        " join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace"
        f" where k.conname {_OURS} and c.relname not {_OURS} and {_IN_PATH} order by 2, 3",
        "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}",
        "on",
        "ACCESS EXCLUSIVE",
    ),
    _Attached(
        "column",
        "select n.nspname, c.relname, a.attname from pg_attribute a"
        " join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace"
        f" where a.attname {_OURS} and not a.attisdropped and a.attnum > 0"
        f" and c.relkind in ('r', 'p') and c.relname not {_OURS} and {_IN_PATH} order by 2, 3",
        "ALTER TABLE {table} DROP COLUMN IF EXISTS {name}",
        "of",
        "ACCESS EXCLUSIVE",
    ),
)

# Our own relations by kind and pg_class.relkind, in the order they are looked up.
_RELATION_KINDS = (
    ("MATERIALIZED VIEW", "'m'"),
    ("VIEW", "'v'"),
    ("TABLE", "'r', 'p', 'f'"),
    ("SEQUENCE", "'S'"),
)
_RELATIONS = (
    "select n.nspname, c.relname from pg_class c"
    " join pg_namespace n on n.oid = c.relnamespace"
    f" where c.relname {_OURS} and c.relkind in ({{relkinds}}) and {_IN_PATH}"
    " and c.relname <> 'jobdash_schema_migrations'"
    # Sequences of serial and identity columns go with their table.
    " and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass"
    "  and d.objid = c.oid and d.deptype in ('a', 'i'))"
    " order by 2"
)

_ROUTINES = (
    "select n.nspname, p.proname, pg_get_function_identity_arguments(p.oid) from pg_proc p"
    f" join pg_namespace n on n.oid = p.pronamespace where p.proname {_OURS} and {_IN_PATH}"
    " order by 2, 3"
)

_TYPES = (
    "select n.nspname, t.typname, t.typtype = 'd' from pg_type t"
    " join pg_namespace n on n.oid = t.typnamespace"
    " left join pg_class c on c.oid = t.typrelid"
    f" where t.typname {_OURS} and {_IN_PATH} and (c.oid is null or c.relkind = 'c')"
    " order by 2"
)


def find_objects(conn: psycopg.Connection) -> list[Removal]:
    """Every jobdash_* object, in the order they are removed: one statement each for the
    ledger and what sits on Procrastinate's tables, then our own objects grouped by kind."""
    found = [
        *_migration_ledger(conn),
        *(removal for attached in _ATTACHED for removal in _attached(conn, attached)),
        *_relations(conn),
        *_routines(conn),
        *_types(conn),
    ]
    singles = [r for r in found if r.statement is not None]
    return singles + sorted(
        (r for r in found if r.statement is None), key=lambda r: GROUPED_KINDS.index(r.kind)
    )


def _migration_ledger(conn: psycopg.Connection) -> list[Removal]:
    return [
        Removal("table", row.name, _drop("TABLE", sql.Identifier(row.schema, row.name)))
        for row in fetch_all(conn, _Named, _LEDGER)
    ]


def _attached(conn: psycopg.Connection, attached: _Attached) -> list[Removal]:
    removals = []
    for row in fetch_all(conn, _OnTable, attached.query):
        statement = sql.SQL(attached.drop).format(
            name=sql.Identifier(row.name),
            table=sql.Identifier(row.schema, row.table),
            qualified=sql.Identifier(row.schema, row.name),
        )
        removals.append(
            Removal(
                attached.kind,
                f"{row.name} {attached.word} {row.table}",
                statement,
                None,
                row.table,
                attached.lock,
                concurrently=attached.concurrently,
            )
        )
    return removals


def _relations(conn: psycopg.Connection) -> list[Removal]:
    return [
        Removal(kind.lower(), row.name, object=sql.Identifier(row.schema, row.name))
        for kind, relkinds in _RELATION_KINDS
        for row in fetch_all(conn, _Named, _RELATIONS.format(relkinds=relkinds))
    ]


def _routines(conn: psycopg.Connection) -> list[Removal]:
    removals = []
    for row in fetch_all(conn, _Routine, _ROUTINES):
        signature = sql.SQL("{}({})").format(
            sql.Identifier(row.schema, row.name), sql.SQL(row.args)
        )
        removals.append(Removal("routine", f"{row.name}({row.args})", object=signature))
    return removals


def _types(conn: psycopg.Connection) -> list[Removal]:
    return [
        Removal(
            "domain" if row.domain else "type",
            row.name,
            object=sql.Identifier(row.schema, row.name),
        )
        for row in fetch_all(conn, _Type, _TYPES)
    ]


def uninstall(
    conninfo: str,
    *,
    notify: Notify | None = None,
    lock_timeout_ms: int | None = None,
    max_lock_attempts: int | None = None,
) -> list[Removal]:
    """Remove every jobdash_* object; return what was removed ([] when there was nothing)."""
    say = notify or (lambda _line: None)
    timeout = lock_timeout_ms or load_settings().migrate_lock_timeout_ms
    retry = Retry(timeout) if max_lock_attempts is None else Retry(timeout, max_lock_attempts)
    with connect(conninfo, application_name="jobdash-uninstall") as conn:
        conn.execute("set statement_timeout = 0")
        with advisory_lock(conn, say):
            removals = find_objects(conn)
            for label, names, removal, statement in _statements(removals):
                try:
                    if removal.concurrently:
                        conn.execute(statement)
                    else:
                        # Our tables go in one statement, locking several of them: a session
                        # still writing two of them cannot deadlock it for long, as
                        # lock_timeout (200 ms) gives way before deadlock_timeout (1 s).
                        run_locked(
                            conn,
                            label,
                            removal.wants(),
                            retry,
                            say,
                            partial(conn.execute, statement),
                        )
                except psycopg.Error as exc:
                    detail = one_line(exc.diag.message_detail or "")
                    raise MigrationError(
                        f"{label} failed: {one_line(exc)}{f' ({detail})' if detail else ''}; "
                        "what went before is removed, `jobdash uninstall` again removes the rest"
                    ) from exc
                say(f"{label.replace('drop', 'dropped', 1)}{names}")
    return removals


def _drop(kind: str, *objects: sql.Composable) -> sql.Composed:
    return sql.SQL("DROP {} IF EXISTS {}").format(
        sql.SQL(kind.upper()), sql.SQL(", ").join(objects)
    )


def _statements(removals: list[Removal]) -> list[tuple[str, str, Removal, sql.Composed]]:
    """(label, ": names" or "", removal, statement): one each for the singles, one per kind
    for the rest."""
    out = [(f"drop {r.kind} {r.name}", "", r, r.statement) for r in removals if r.statement]
    for kind in GROUPED_KINDS:
        group = [r for r in removals if r.statement is None and r.kind == kind]
        if group:
            label = f"drop {len(group)} {kind}{'s' if len(group) > 1 else ''}"
            names = ": " + ", ".join(r.name for r in group)
            statement = _drop(kind, *(r.object for r in group if r.object))
            out.append((label, names, group[0], statement))
    return out
