"""`jobdash migrate`: Procrastinate's schema when absent, then our migrations, step by step.

Built to run against a live queue: a step takes at most one of Procrastinate's tables' locks,
waits for it at most `lock_timeout` (then lets the queue through, and retries with backoff),
and holds it for milliseconds; indexes on Procrastinate's tables are built CONCURRENTLY
(an invalid one left by an interrupted build is dropped and built again). A migration is
recorded in jobdash_schema_migrations once all its steps are done; since every step is
idempotent, the next run resumes an interrupted one from its first step.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from procrastinate.schema import SchemaManager
from psycopg import sql
from psycopg.rows import TupleRow

from jobdash.core.database import connect
from jobdash.core.errors import MigrationError, one_line
from jobdash.core.schema.files import Migration, Step, load_migrations
from jobdash.core.schema.locks import Effect, conflicts, from_pg_mode, strongest
from jobdash.core.settings import load_settings

# Arbitrary, fixed: serialises concurrent `jobdash migrate` (and `uninstall`) runs.
MIGRATION_LOCK_KEY = 0x6A6F6264  # "jobd"

# Objects the installed Procrastinate needs, and the migration that created each (oldest first).
REQUIRED_PROCRASTINATE_OBJECTS = [
    ("procrastinate_workers", "table", "03.01.00_01_pre_add_heartbeat.sql"),
    (
        "procrastinate_retry_job_v2",
        "function",
        "03.04.00_01_pre_add_retry_failed_job_procedure.sql",
    ),
]

BATCH_SIZE = 10_000  # jobs per backfill batch: 0.2-0.4 s each at 1 M jobs (benchmarks-migrate.md)
MAX_LOCK_ATTEMPTS = 60  # about 4 minutes of backoff before giving up on a lock
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 5.0
ADVISORY_POLL_S = 0.2

Notify = Callable[[str], None]


@dataclass
class MigrationReport:
    procrastinate_schema_applied: bool = False
    applied: list[str] = field(default_factory=list)
    lock_retries: int = 0


@dataclass(frozen=True)
class Retry:
    """How a step waits for its lock: `lock_timeout_ms` per attempt, then backoff."""

    lock_timeout_ms: int
    max_attempts: int = MAX_LOCK_ATTEMPTS
    base_s: float = BACKOFF_BASE_S
    cap_s: float = BACKOFF_CAP_S

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: attempts that collide once do not collide again."""
        return min(self.cap_s, self.base_s * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def migrate(
    conninfo: str,
    *,
    between_steps: Callable[[Step], None] | None = None,
    notify: Notify | None = None,
    lock_timeout_ms: int | None = None,
    batch_size: int = BATCH_SIZE,
    max_lock_attempts: int = MAX_LOCK_ATTEMPTS,
    migrations: list[Migration] | None = None,
) -> MigrationReport:
    """Apply what is pending. `between_steps(step)` is called after each committed step (and
    after each batch of a batched step); `notify` gets one line per step done and per retry."""
    say = notify or (lambda _line: None)
    timeout = lock_timeout_ms or load_settings().migrate_lock_timeout_ms
    retry = Retry(timeout, max_attempts=max_lock_attempts)
    report = MigrationReport()
    pending = load_migrations() if migrations is None else migrations
    with connect(conninfo, application_name="jobdash-migrate") as conn:
        # A migration may legitimately run long (a concurrent index build on a big table).
        conn.execute("set statement_timeout = 0")
        with advisory_lock(conn, say):
            _ensure_procrastinate_schema(conn, report)
            _ensure_ledger(conn)
            applied = applied_names(conn)
            for migration in pending:
                if migration.name in applied:
                    continue
                for step in migration.steps:
                    started = time.monotonic()
                    report.lock_retries += run_step(
                        conn, step, retry, say, batch_size, between_steps
                    )
                    say(f"{step.label}: done in {time.monotonic() - started:.2f} s")
                    if between_steps is not None:
                        between_steps(step)
                conn.execute(
                    "insert into jobdash_schema_migrations (name) values (%s)"
                    " on conflict (name) do nothing",
                    (migration.name,),
                )
                report.applied.append(migration.name)
    return report


def pending_migrations(conninfo: str) -> list[str]:
    """What `migrate` would still apply ("procrastinate schema" first when it is absent)."""
    with connect(conninfo, application_name="jobdash-migrate") as conn:
        procrastinate_missing, migrations = pending(conn)
    return (["procrastinate schema"] if procrastinate_missing else []) + [
        m.name for m in migrations
    ]


def pending(conn: psycopg.Connection) -> tuple[bool, list[Migration]]:
    """(Procrastinate's schema missing?, our migrations not yet recorded)."""
    applied = applied_names(conn) if _exists(conn, "jobdash_schema_migrations") else set()
    return not _exists(conn, "procrastinate_jobs"), [
        m for m in load_migrations() if m.name not in applied
    ]


def applied_names(conn: psycopg.Connection) -> set[str]:
    return {row[0] for row in conn.execute("select name from jobdash_schema_migrations")}


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()
    return bool(row and row[0])


class advisory_lock:
    """The session advisory lock that serialises migrate and uninstall runs. Polled rather
    than waited for: a session waiting in pg_advisory_lock() holds a snapshot, which a
    concurrent index build of the run holding the lock would wait for in turn."""

    def __init__(self, conn: psycopg.Connection, say: Notify) -> None:
        self.conn, self.say = conn, say

    def __enter__(self) -> None:
        told = False
        while True:
            row = self.conn.execute(
                "select pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)
            ).fetchone()
            if row and row[0]:
                return
            if not told:
                self.say("waiting for another `jobdash migrate` or `uninstall` to finish")
                told = True
            time.sleep(ADVISORY_POLL_S)

    def __exit__(self, *exc: object) -> None:
        if not self.conn.closed and not self.conn.broken:
            self.conn.execute("select pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


def _ensure_procrastinate_schema(conn: psycopg.Connection, report: MigrationReport) -> None:
    if _exists(conn, "procrastinate_jobs"):
        missing = _missing_procrastinate_migrations(conn)
        if missing:
            raise MigrationError(
                "Procrastinate's schema in this database is older than the installed "
                "procrastinate needs; apply its migrations from "
                f"{missing[0]} on (see `procrastinate schema --migrations-path`), then run "
                "`jobdash migrate` again"
            )
        return
    with conn.transaction():
        # An empty database: nothing can be waiting on these tables yet. apply_schema() is
        # not idempotent, hence the to_regclass check above.
        conn.execute(SchemaManager.get_schema())
    report.procrastinate_schema_applied = True


def _missing_procrastinate_migrations(conn: psycopg.Connection) -> list[str]:
    missing = []
    for name, kind, migration in REQUIRED_PROCRASTINATE_OBJECTS:
        if kind == "table":
            present = _exists(conn, name)
        else:
            row = conn.execute(
                "select exists (select 1 from pg_proc where proname = %s)", (name,)
            ).fetchone()
            present = bool(row and row[0])
        if not present:
            missing.append(migration)
    return missing


def _ensure_ledger(conn: psycopg.Connection) -> None:
    conn.execute(
        """
        create table if not exists jobdash_schema_migrations (
            name text primary key,
            applied_at timestamptz not null default now()
        )
        """
    )


def run_step(
    conn: psycopg.Connection,
    step: Step,
    retry: Retry,
    say: Notify,
    batch_size: int = BATCH_SIZE,
    between_steps: Callable[[Step], None] | None = None,
) -> int:
    """Run one step; return how many times it waited out its lock_timeout. A failure is one
    line naming the step: what earlier steps did stays, and the next run resumes."""
    try:
        if step.concurrent:
            _run_concurrently(conn, step, say)
            return 0
        wants = wanted_locks(conn, step)
        if not step.batched:
            return run_locked(conn, step.label, wants, retry, say, lambda: conn.execute(step.sql))
        retries, cursor = 0, None
        while True:
            rows: list[TupleRow | None] = []

            def one_batch(rows: list[TupleRow | None] = rows, cursor: object = cursor) -> None:
                params = {"cursor": cursor, "batch_size": batch_size}
                rows.append(conn.execute(step.sql, params).fetchone())

            retries += run_locked(conn, step.label, wants, retry, say, one_batch)
            cursor = rows[-1][0] if rows and rows[-1] else None
            if cursor is None:
                return retries
            if between_steps is not None:
                between_steps(step)
    except psycopg.Error as exc:
        raise MigrationError(
            f"{step.label} failed: {one_line(exc)}; the steps before it stay done and "
            "`jobdash migrate` resumes from there"
        ) from exc


def effective_effects(conn: psycopg.Connection, step: Step) -> list[Effect]:
    """The step's effects in this database: DROP TRIGGER IF EXISTS locks nothing when the
    trigger is absent (a first run), ACCESS EXCLUSIVE when it is there (a resumed run)."""
    return [e for e in step.effects if e.kind != "drop trigger" or _trigger_exists(conn, e)]


def wanted_locks(conn: psycopg.Connection, step: Step) -> dict[str, str]:
    """{Procrastinate's table: the strongest lock the step will ask for on it}."""
    effects = effective_effects(conn, step)
    return {
        table: strongest(e.lock for e in effects if e.table == table and e.lock)
        for table in step.locked_tables()
        if any(e.table == table and e.lock for e in effects)
    }


def _trigger_exists(conn: psycopg.Connection, effect: Effect) -> bool:
    row = conn.execute(
        "select exists (select 1 from pg_trigger where tgname = %s"
        " and tgrelid = to_regclass(%s))",
        (effect.name, effect.table),
    ).fetchone()
    return bool(row and row[0])


def run_locked(
    conn: psycopg.Connection,
    label: str,
    wants: dict[str, str],
    retry: Retry,
    say: Notify,
    work: Callable[[], object],
) -> int:
    """`work()` in one transaction that waits at most lock_timeout for each lock; on a lock
    timeout, roll back (the queue behind us goes through), wait, try again. `wants` maps the
    tables the step locks to the mode it asks for (to name who holds them)."""
    for attempt in range(1, retry.max_attempts + 1):
        try:
            with conn.transaction():
                conn.execute(
                    "select set_config('lock_timeout', %s, true)", (f"{retry.lock_timeout_ms}ms",)
                )
                work()
            return attempt - 1
        except psycopg.errors.LockNotAvailable:
            holders = lock_holders(conn, wants)
            if attempt == retry.max_attempts:
                raise MigrationError(
                    f"{label}: no lock after {attempt} tries{holders}; nothing is half-done: "
                    "run the command again when that transaction has finished"
                ) from None
            delay = retry.delay(attempt)
            say(
                f"{label}: lock not granted within {retry.lock_timeout_ms} ms{holders}; "
                f"retry {attempt} in {delay:.2f} s"
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def lock_holders(conn: psycopg.Connection, wants: dict[str, str]) -> str:
    """', waiting for pid 123 (app, idle in transaction for 4.0 s) on procrastinate_jobs':
    the oldest session holding a lock that conflicts with what the step asks for."""
    if not wants:
        return ""
    rows = conn.execute(
        """
        select l.relation::regclass::text, l.mode, a.pid, coalesce(a.application_name, ''),
               coalesce(a.state, '?'), extract(epoch from now() - a.xact_start)::float8
        from pg_locks l
        join pg_stat_activity a on a.pid = l.pid
        where l.granted and l.pid <> pg_backend_pid()
          and l.relation = any(array(select to_regclass(t) from unnest(%s::text[]) t))
        order by a.xact_start
        """,
        (list(wants),),
    ).fetchall()
    blockers: dict[int, str] = {}
    for table, mode, pid, app, state, age in rows:
        held = from_pg_mode(mode)
        if held and table in wants and conflicts(held, wants[table]) and pid not in blockers:
            app_text = f"{app}, " if app else ""
            blockers[pid] = f"pid {pid} ({app_text}{state} for {age or 0:.1f} s) on {table}"
    if not blockers:
        return " (the transaction holding it has since finished)"
    first = next(iter(blockers.values()))
    more = f" and {len(blockers) - 1} more" if len(blockers) > 1 else ""
    return f", waiting for {first}{more}"


def _run_concurrently(conn: psycopg.Connection, step: Step, say: Notify) -> None:
    """A CONCURRENTLY statement, in autocommit. An index an interrupted build left invalid
    (pg_index.indisvalid = false) would satisfy IF NOT EXISTS while unusable: drop it first
    (CONCURRENTLY too), then build it again."""
    for effect in step.effects:
        if effect.kind == "build index" and effect.name and _invalid_index(conn, effect.name):
            say(f"{step.label}: index {effect.name} was left invalid by an interrupted run; "
                "rebuilding it")
            conn.execute(
                sql.SQL("drop index concurrently if exists {}").format(sql.Identifier(effect.name))
            )
    conn.execute(step.sql)


def _invalid_index(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute(
        "select not indisvalid from pg_index where indexrelid = to_regclass(%s)", (name,)
    ).fetchone()
    return bool(row and row[0])
