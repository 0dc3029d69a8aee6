"""The README is the front door: every environment variable the code reads is in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_environment_variable_is_documented() -> None:
    read = {
        name
        for room in ("app", "core", "jobs")
        for path in (ROOT / room).rglob("*.py")
        for name in re.findall(r'"(JOBDASH_[A-Z0-9_]+)"', path.read_text())
    }
    readme = (ROOT / "README.md").read_text()
    assert "JOBDASH_SEARCH_SCAN_FAILED_JOBS" in read  # the search finds what the code reads
    assert sorted(name for name in read if f"`{name}`" not in readme) == []
