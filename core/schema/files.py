"""Our migrations: plain SQL files `migrations/NNN_name.sql`, cut into steps.

A step starts at a line `-- step: <what it does>` and runs on its own:
- a step that builds or drops an index CONCURRENTLY holds that one statement and runs alone,
  outside any transaction;
- `-- step (batched): <what>` holds one statement called again and again, each call in its own
  transaction, with `%(cursor)s` (NULL first, then what the previous call returned) and
  `%(batch_size)s`, until it returns NULL;
- any other step runs in one short transaction with a short lock_timeout, retried.
Every step is idempotent (IF NOT EXISTS, CREATE OR REPLACE, DROP ... IF EXISTS first), so a
migration that was interrupted is resumed by running it again from its first step.
Comments before the first step describe the file. The rules that keep a step from blocking
a live queue are checked here, when the files are read (`check_step`).
"""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass, field

from jobdash.core.errors import MigrationError
from jobdash.core.schema.locks import Effect, defined_functions, effects, is_ours
from jobdash.core.schema.sqltext import Statement, statements

_MARKER = re.compile(r"^-- step(?: \((?P<options>[^)]*)\))?: *(?P<what>.*?)\s*$", re.MULTILINE)
_OPTIONS = {"batched"}
_CONCURRENTLY = re.compile(r"\bconcurrently\b", re.IGNORECASE)


@dataclass(frozen=True)
class Step:
    migration: str
    number: int
    total: int
    what: str
    sql: str
    batched: bool
    statements: tuple[Statement, ...]
    effects: tuple[Effect, ...] = field(default=())

    @property
    def concurrent(self) -> bool:
        """CONCURRENTLY anywhere (not in a comment or literal): the step runs in autocommit."""
        return any(_CONCURRENTLY.search(s.skeleton) for s in self.statements)

    @property
    def label(self) -> str:
        return f"{self.migration} step {self.number}/{self.total} ({self.what})"

    def locked_tables(self) -> list[str]:
        """Procrastinate's tables this step locks against writers or readers."""
        return sorted(
            {e.table for e in self.effects if e.table and not is_ours(e.table) and e.lock
             and e.lock != "ACCESS SHARE"}
        )


@dataclass(frozen=True)
class Migration:
    name: str
    steps: tuple[Step, ...]


def migration_files() -> list[tuple[str, str]]:
    """(name, sql) of our migrations, in the order their numbers give."""
    folder = importlib.resources.files("jobdash.migrations")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name, f.read_text(encoding="utf-8")) for f in files]


def load_migrations(files: list[tuple[str, str]] | None = None) -> list[Migration]:
    """Every migration, cut into checked steps. Functions defined by earlier steps are known
    to later ones, so `SELECT jobdash_x()` is analysed as what jobdash_x's body does."""
    functions: dict[str, str] = {}
    migrations = []
    for name, text in migration_files() if files is None else files:
        steps = []
        for step in split_steps(name, text):
            step = _with_effects(step, functions)
            check_step(step)
            for statement in step.statements:
                functions.update(defined_functions(statement))
            steps.append(step)
        migrations.append(Migration(name, tuple(steps)))
    return migrations


def split_steps(name: str, text: str) -> list[Step]:
    markers = list(_MARKER.finditer(text))
    if not markers:
        raise MigrationError(f"{name}: no '-- step: <what it does>' line")
    if statements(text[: markers[0].start()]):
        raise MigrationError(f"{name}: SQL before the first '-- step:' line")
    steps = []
    for number, marker in enumerate(markers, start=1):
        end = markers[number].start() if number < len(markers) else len(text)
        sql = text[marker.end() : end].strip()
        options = {o.strip() for o in (marker.group("options") or "").split(",") if o.strip()}
        where = f"{name} step {number}"
        if options - _OPTIONS:
            raise MigrationError(f"{where}: unknown option {sorted(options - _OPTIONS)[0]!r}")
        if not marker.group("what"):
            raise MigrationError(f"{where}: say what the step does after '-- step:'")
        parsed = tuple(statements(sql))
        if not parsed:
            raise MigrationError(f"{where}: no SQL")
        steps.append(
            Step(name, number, len(markers), marker.group("what"), sql, "batched" in options,
                 parsed)
        )
    return steps


def _with_effects(step: Step, functions: dict[str, str]) -> Step:
    found = tuple(e for s in step.statements for e in effects(s, functions))
    return Step(step.migration, step.number, step.total, step.what, step.sql, step.batched,
                step.statements, found)


def check_step(step: Step) -> None:
    """Refuse a step that could block a live queue for long or deadlock with it."""
    where = step.label
    if step.concurrent and len(step.statements) != 1:
        raise MigrationError(f"{where}: a CONCURRENTLY statement must be the step's only one")
    if step.batched and (len(step.statements) != 1 or "%(cursor)s" not in step.sql):
        raise MigrationError(f"{where}: a batched step is one statement using %(cursor)s")
    for e in step.effects:
        if e.kind == "build index" and not e.concurrently and e.table and not is_ours(e.table):
            raise MigrationError(
                f"{where}: index {e.name} on {e.table} must be built CONCURRENTLY "
                "(a plain CREATE INDEX blocks every writer for the whole build)"
            )
    locked = step.locked_tables()
    touched = {e.table for e in step.effects if e.table and not is_ours(e.table)}
    if locked and len(touched) > 1:
        # Two locks taken in an order the application may take the other way round.
        raise MigrationError(
            f"{where}: locks {locked[0]} and also touches {sorted(touched - {locked[0]})[0]}; "
            "one of Procrastinate's tables per step"
        )
