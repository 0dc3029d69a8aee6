"""Which table lock each statement takes, read from its shape (no database needed).

The modes and what conflicts with what are PostgreSQL's (docs: "Explicit Locking", table
13.2). `effects()` finds, in a statement's skeleton, the DDL and DML that lock a table and
the tables that are only read; calls to our own functions are followed into their bodies.
Only names that are Procrastinate's (`procrastinate_*`) or ours (`jobdash_*`) count: the rest
of a statement (aliases, columns, functions) is not a table we care about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from jobdash.core.schema.sqltext import Statement, statements

MODES = [
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
]

_CONFLICTS = {
    "ACCESS SHARE": {"ACCESS EXCLUSIVE"},
    "ROW SHARE": {"EXCLUSIVE", "ACCESS EXCLUSIVE"},
    "ROW EXCLUSIVE": {"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"},
    "SHARE UPDATE EXCLUSIVE": set(MODES[3:]),
    "SHARE": {"ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", *MODES[5:]},
    "SHARE ROW EXCLUSIVE": set(MODES[2:]),
    "EXCLUSIVE": set(MODES[1:]),
    "ACCESS EXCLUSIVE": set(MODES),
}

# What holding each mode on a Procrastinate table means for its workers and deferrers.
CONSEQUENCE = {
    "ACCESS SHARE": "readers and writers continue",
    "ROW EXCLUSIVE": "readers and writers continue (row locks only)",
    "SHARE UPDATE EXCLUSIVE": "readers and writers continue; waits for running transactions",
    "SHARE": "blocks writers for the whole statement",
    "SHARE ROW EXCLUSIVE": "blocks writers while held, milliseconds; waits at most "
    "lock_timeout, retried",
    "ACCESS EXCLUSIVE": "blocks readers and writers while held, milliseconds; waits at "
    "most lock_timeout, retried",
}


def conflicts(held: str, wanted: str) -> bool:
    return held in _CONFLICTS[wanted]


def pg_mode(mode: str) -> str:
    """The spelling of pg_locks.mode: 'SHARE ROW EXCLUSIVE' -> 'ShareRowExclusiveLock'."""
    return "".join(word.capitalize() for word in mode.split()) + "Lock"


def from_pg_mode(name: str) -> str | None:
    """'ShareRowExclusiveLock' -> 'SHARE ROW EXCLUSIVE'; None for what is not a table lock."""
    return next((m for m in MODES if pg_mode(m) == name), None)


def strongest(modes: Iterable[str]) -> str:
    return max(modes, key=MODES.index)


def is_ours(name: str) -> bool:
    return name.startswith("jobdash_")


@dataclass(frozen=True)
class Effect:
    kind: str  # "build index", "drop trigger", "write", "read", ...
    table: str | None  # the table locked; None when no table is
    lock: str | None
    name: str | None = None  # the index, trigger or table the statement is about
    concurrently: bool = False


_NAME = r'(?:"?\w+"?\.)?"?(\w+)"?'
_TABLE_NAME = re.compile(r"(?:procrastinate|jobdash)_\w+")
_KEYWORDS = {"on", "of", "set", "only", "nowait", "skip"}

# (pattern, kind, lock, group of the object's name, group of the table)
_Rule = tuple[str, str, str | None, int | None, int | None]
_DDL: list[_Rule] = [
    (rf"\bcreate (?:unique )?index (concurrently )?(?:if not exists )?{_NAME} on (?:only )?{_NAME}",
     "build index", None, 2, 3),
    (rf"\bdrop index (concurrently )?(?:if exists )?{_NAME}", "drop index", None, 2, None),
    (rf"\bcreate (?:or replace )?(?:constraint )?trigger {_NAME} .*? on {_NAME}",
     "create trigger", "SHARE ROW EXCLUSIVE", 1, 2),
    (rf"\bdrop trigger (?:if exists )?{_NAME} on {_NAME}", "drop trigger", "ACCESS EXCLUSIVE",
     1, 2),
    (rf"\balter table (?:if exists )?(?:only )?{_NAME}", "alter table", "ACCESS EXCLUSIVE", 1, 1),
    (rf"\bcreate (?:unlogged )?table (?:if not exists )?{_NAME}", "create table", None, 1, None),
    (rf"\bdrop table (?:if exists )?{_NAME}", "drop table", "ACCESS EXCLUSIVE", 1, 1),
    (rf"\btruncate (?:table )?(?:only )?{_NAME}", "truncate", "ACCESS EXCLUSIVE", 1, 1),
    (rf"\breferences {_NAME}", "reference", "SHARE ROW EXCLUSIVE", None, 1),
    (rf"\binsert into {_NAME}", "write", "ROW EXCLUSIVE", None, 1),
    (rf"\bdelete from (?:only )?{_NAME}", "write", "ROW EXCLUSIVE", None, 1),
    (rf"\bupdate (?:only )?{_NAME}", "write", "ROW EXCLUSIVE", None, 1),
    (rf"\b(?:from|join|using|like) (?:only )?{_NAME}(?!\s*\()", "read", "ACCESS SHARE", None, 1),
]
_DDL_RE = [
    (re.compile(p, re.IGNORECASE), kind, lock, name, table) for p, kind, lock, name, table in _DDL
]
_CALL = re.compile(r"\b(\w+)\s*\(")
# A trigger names the function it will run, it does not run it now.
_TRIGGER_FUNCTION = re.compile(r"\bexecute (?:function|procedure) (\w+)", re.IGNORECASE)
_FUNCTION_DEF = re.compile(
    rf"\bcreate (?:or replace )?(?:function|procedure) {_NAME}", re.IGNORECASE
)


def effects(statement: Statement, functions: Mapping[str, str] | None = None) -> list[Effect]:
    """What `statement` locks. `functions` maps our function names to their bodies, so that
    `SELECT jobdash_x()` reports what the body of jobdash_x touches."""
    return _effects(statement.skeleton, statement.bodies, dict(functions or {}), set())


def _effects(
    skeleton: str, bodies: Iterable[str], functions: dict[str, str], seen: set[str]
) -> list[Effect]:
    found: list[Effect] = []
    defines_function = _FUNCTION_DEF.search(skeleton) is not None
    for pattern, kind, lock, name_group, table_group in _DDL_RE:
        for match in pattern.finditer(skeleton):
            name = match.group(name_group).lower() if name_group else None
            table = match.group(table_group).lower() if table_group else None
            if kind == "drop index" and name and not _TABLE_NAME.fullmatch(name):
                continue
            if table is not None and (table in _KEYWORDS or not _TABLE_NAME.fullmatch(table)):
                continue
            concurrently = kind in {"build index", "drop index"} and bool(match.group(1))
            if kind == "build index":
                lock = "SHARE UPDATE EXCLUSIVE" if concurrently else "SHARE"
            elif kind == "drop index":
                lock = "SHARE UPDATE EXCLUSIVE" if concurrently else "ACCESS EXCLUSIVE"
            found.append(Effect(kind, table, lock, name, concurrently))
    # A DO block runs its body now; a function body runs only when called.
    if not defines_function:
        for body in bodies:
            for inner in statements(body):
                found += _effects(inner.skeleton, inner.bodies, functions, seen)
        named = {n.lower() for n in _TRIGGER_FUNCTION.findall(skeleton)}
        for call in _CALL.findall(skeleton):
            name = call.lower()
            if name in functions and name not in seen and name not in named:
                seen.add(name)
                for inner in statements(functions[name]):
                    found += _effects(inner.skeleton, inner.bodies, functions, seen)
    return _without_overlaps(found)


def _without_overlaps(found: list[Effect]) -> list[Effect]:
    """A table written is also read ('insert into x ... from x'): keep the stronger effect."""
    strong = {(e.table) for e in found if e.kind != "read"}
    kept, seen = [], set()
    for e in found:
        key = (e.kind, e.table, e.name)
        if (e.kind == "read" and e.table in strong) or key in seen:
            continue
        seen.add(key)
        kept.append(e)
    return kept


def defined_functions(statement: Statement) -> dict[str, str]:
    """{name: body} of the functions and procedures a statement creates."""
    match = _FUNCTION_DEF.search(statement.skeleton)
    if not match or not statement.bodies:
        return {}
    return {match.group(1).lower(): statement.bodies[0]}
