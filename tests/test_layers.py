"""What may import what (docs/architecture.md draws the same rooms): a page that imports
psycopg, a loader that imports streamlit, or the worker side importing the dashboard fails here.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jobdash"

UI_LIBRARIES = {"streamlit", "altair", "starlette"}
DATABASE = {
    "psycopg", "psycopg_pool", "jobdash.core.pool", "jobdash.core.database", "jobdash.core.rows",
}  # fmt: skip


@dataclass(frozen=True)
class Room:
    """Modules under `prefix` may not import anything that starts with a `forbidden` name."""

    prefix: str
    forbidden: frozenset[str]
    why: str


ROOMS = [
    Room(
        "jobdash.core",
        frozenset({"jobdash.app", "jobdash.jobs", *UI_LIBRARIES, "pandas"}),
        "shared plumbing knows neither side nor any UI",
    ),
    Room(
        "jobdash.jobs",
        frozenset({"jobdash.app", *UI_LIBRARIES, "pandas"}),
        "the worker side runs in the team's workers: no dashboard code",
    ),
    Room(
        "jobdash.app.rules",
        frozenset({"jobdash.app.read", "jobdash.app.actions", "jobdash.app.ui", "jobdash.app.web",
                   "jobdash.app.cli", "jobdash.jobs", *UI_LIBRARIES, *DATABASE}),
        "rules are pure functions",
    ),  # fmt: skip
    Room(
        "jobdash.app.read",
        frozenset({"jobdash.app.actions", "jobdash.app.ui", "jobdash.app.web", "jobdash.app.cli",
                   "jobdash.jobs", *UI_LIBRARIES}),
        "read models return data; they draw nothing and change nothing",
    ),  # fmt: skip
    Room(
        "jobdash.app.actions",
        frozenset({"jobdash.app.ui", "jobdash.app.web", "jobdash.app.cli", "jobdash.jobs",
                   *UI_LIBRARIES}),
        "actions are called by the UI, the routes and the CLI alike",
    ),  # fmt: skip
    Room(
        "jobdash.app.cache",
        frozenset({"jobdash.app.actions", "jobdash.app.ui", "jobdash.app.web", "jobdash.app.cli",
                   "jobdash.jobs", *UI_LIBRARIES}),
        "the process-wide cache of reads serves pages and routes alike: it draws nothing",
    ),  # fmt: skip
    Room(
        "jobdash.app.ui.views",
        frozenset({*DATABASE, "jobdash.app.read.dashboard_sql", "jobdash.app.cli"}),
        "pages render and call loaders/actions through app.cache.data / ui.operations",
    ),
    Room(
        "jobdash.app.ui.panels",
        frozenset({*DATABASE, "jobdash.app.read.dashboard_sql", "jobdash.app.cli"}),
        "panels render what app.cache.data gives them",
    ),
    Room(
        "jobdash.app.ui.widgets",
        frozenset({*DATABASE, "jobdash.app.cli"}),
        "widgets render",
    ),
    Room("jobdash.app.ui", frozenset({"jobdash.app.cli", "jobdash.jobs"}), "the UI is a leaf"),
    Room(
        "jobdash.app.web",
        frozenset({"jobdash.app.ui", "jobdash.app.cli", "jobdash.jobs"}),
        "routes sit beside the pages, not on them",
    ),
    Room(
        "jobdash.app.cli",
        frozenset({"jobdash.app.ui", "streamlit", "altair"}),
        "the CLI starts the dashboard as a process, it does not import it",
    ),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def sources() -> list[Path]:
    # os.walk, not Path.rglob: the subpackages are symlinks, which rglob does not enter.
    return sorted(
        Path(folder) / name
        for folder, _, files in os.walk(PACKAGE, followlinks=True)
        for name in files
        if name.endswith(".py")
    )


def test_the_whole_package_is_read() -> None:
    names = {module_name(p) for p in sources()}
    assert {"jobdash.app.ui.views.failed_jobs", "jobdash.jobs.maintenance.rollup"} <= names


def violations() -> list[str]:
    found = []
    for path in sources():
        module = module_name(path)
        for room in ROOMS:
            if not matches(module, room.prefix):
                continue
            for name in sorted(imported(path)):
                if any(matches(name, bad) for bad in room.forbidden):
                    found.append(f"{module} imports {name}: {room.why}")
    return found


def test_every_module_keeps_to_its_room() -> None:
    assert violations() == []


def test_no_module_imports_the_repository_folders_by_their_own_names() -> None:
    # `app`, `jobs`, `core` exist only as jobdash.app, ... once installed.
    bad = [
        f"{module_name(p)} imports {n}"
        for p in sources()
        for n in imported(p)
        if n.split(".")[0] in {"app", "jobs", "core", "migrations"}
    ]
    assert bad == []


@pytest.mark.parametrize(
    ("module", "name", "room"),
    [
        ("jobdash.app.ui.views.x", "psycopg", "jobdash.app.ui.views"),
        ("jobdash.app.read.x", "streamlit", "jobdash.app.read"),
        ("jobdash.jobs.x", "jobdash.app.read.models", "jobdash.jobs"),
    ],
)
def test_the_rules_catch_the_examples_they_are_for(module: str, name: str, room: str) -> None:
    rule = next(r for r in ROOMS if r.prefix == room)
    assert matches(module, rule.prefix)
    assert any(matches(name, bad) for bad in rule.forbidden)


def test_read_models_take_rows_only_through_typed_rows() -> None:
    """A row fetched off a plain cursor is `tuple[Any, ...]` to mypy, which does not flag its
    cells: the read models fetch through core/rows.py's typed helpers (the history charts,
    pandas frames, are the exception mypy's configuration names)."""
    exempt = {"history.py"}
    untyped = [
        f"{path.name}:{number}"
        for path in sorted((PACKAGE / "app" / "read").glob("*.py"))
        if path.name not in exempt
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"conn\.execute\(.*\)\.fetch|conn\.cursor\(\)|dict_row|tuple_row", line)
    ]
    assert untyped == []
