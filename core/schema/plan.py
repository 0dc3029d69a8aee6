"""`jobdash migrate --plan`: each pending step, the table it touches, the lock it takes and how
long it should take, read from the catalog without changing anything.

Estimates are sizes divided by rates measured by bench/bench_migrate.py at 1,000,000 jobs on
2 shared cores (docs/benchmarks-migrate.md), rounded down: an index build reads the table's
heap (pg_relation_size) at INDEX_BUILD_MB_S, a one-statement read of Procrastinate's tables
(recount, clean-up) at SCAN_MB_S, a batched backfill the heaps it reads at BACKFILL_MB_S (it
works job by job). Row counts shown are pg_class.reltuples (the planner's estimate as of the
last ANALYZE). An index build also waits for the transactions running when it starts, which
no size predicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from jobdash.core.schema.files import Step
from jobdash.core.schema.locks import CONSEQUENCE, is_ours, strongest
from jobdash.core.schema.runner import effective_effects, pending

INDEX_BUILD_MB_S = 150.0
SCAN_MB_S = 60.0
BACKFILL_MB_S = 12.0
INSTANT = "< 0.1 s"


@dataclass(frozen=True)
class TableSize:
    rows: float | None  # None: never analysed
    bytes: int


@dataclass(frozen=True)
class PlannedStep:
    step: Step
    tables: tuple[str, ...]  # Procrastinate's tables it touches
    lock: str | None  # the strongest it takes on them; None when it touches none
    effect: str  # what that lock means for the queue
    estimate: str
    note: str = ""

    def lines(self) -> list[str]:
        head = f"  {self.step.number}/{self.step.total} {self.step.what}"
        if not self.tables:
            return [head, f"      our tables only (no lock on Procrastinate's); {self.estimate}"]
        lock = f"{self.lock} lock ({self.effect})" if self.lock else "no lock"
        out = [head, f"      {', '.join(self.tables)}: {lock}", f"      estimate: {self.estimate}"]
        if self.note:
            out.append(f"      note: {self.note}")
        return out


def plan(conn: psycopg.Connection, lock_timeout_ms: int) -> list[tuple[str, list[PlannedStep]]]:
    """[(migration name, its planned steps)] for what is pending."""
    _, migrations = pending(conn)
    sizes: dict[str, TableSize] = {}
    return [
        (m.name, [plan_step(conn, step, lock_timeout_ms, sizes) for step in m.steps])
        for m in migrations
    ]


def plan_step(
    conn: psycopg.Connection, step: Step, lock_timeout_ms: int, sizes: dict[str, TableSize]
) -> PlannedStep:
    theirs = [e for e in step.effects if e.table and not is_ours(e.table)]
    tables = tuple(dict.fromkeys(e.table for e in theirs if e.table))
    for table in tables:
        if table not in sizes:
            sizes[table] = table_size(conn, table)
    note = ""
    present = [e for e in effective_effects(conn, step) if e in theirs]
    locks = [e.lock for e in present if e.lock]
    lock = strongest(locks) if locks else None
    effect = CONSEQUENCE.get(lock, "") if lock else ""
    if lock in {"SHARE ROW EXCLUSIVE", "ACCESS EXCLUSIVE"}:
        effect = effect.replace("lock_timeout", f"{lock_timeout_ms} ms")
    if any(e.kind == "drop trigger" for e in present):
        note = "the trigger exists (an earlier run was interrupted): replaced"
    builds = [e for e in theirs if e.kind == "build index"]
    if builds:
        state = _index_state(conn, builds[0].name or "")
        note = {"valid": "already built: skipped", "invalid": "left invalid by an interrupted "
                "run: dropped concurrently and built again"}.get(state, "")
        table = builds[0].table or ""
        estimate = _estimate(sizes[table], INDEX_BUILD_MB_S, table)
        estimate += " + waiting for transactions running when it starts"
    elif tables and all(e.kind == "read" for e in theirs):
        total = TableSize(
            sum(sizes[t].rows or 0 for t in tables), sum(sizes[t].bytes for t in tables)
        )
        rate = BACKFILL_MB_S if step.batched else SCAN_MB_S
        estimate = _estimate(total, rate, " + ".join(tables))
    elif tables:
        estimate = f"{INSTANT} once the lock is granted"
    else:
        estimate = INSTANT
    return PlannedStep(step, tables, lock, effect, estimate, note)


def table_size(conn: psycopg.Connection, table: str) -> TableSize:
    row = conn.execute(
        "select c.reltuples::float8, pg_relation_size(c.oid) from pg_class c"
        " where c.oid = to_regclass(%s)",
        (table,),
    ).fetchone()
    if not row:
        return TableSize(0, 0)
    rows, size = row
    return TableSize(None if rows < 0 else rows, int(size))


def _estimate(size: TableSize, mb_per_s: float, what: str) -> str:
    seconds = size.bytes / 1e6 / mb_per_s
    rows = "not analysed" if size.rows is None else f"~{size.rows:,.0f} rows"
    shown = INSTANT if seconds < 0.1 else f"~{seconds:,.1f} s" if seconds < 60 else (
        f"~{seconds / 60:,.1f} min"
    )
    return f"{shown} ({what}: {rows}, {size.bytes / 1e6:,.1f} MB)"


def _index_state(conn: psycopg.Connection, name: str) -> str:
    row = conn.execute(
        "select indisvalid from pg_index where indexrelid = to_regclass(%s)", (name,)
    ).fetchone()
    if not row:
        return "absent"
    return "valid" if row[0] else "invalid"
