"""Running the dashboard under AppTest against a test database (shared by the AppTest modules)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from jobdash.app import db
from jobdash.app.panel_state import MEMORY, clear_panel_caches

MAIN = Path(__file__).resolve().parents[1] / "app" / "main.py"


def reset_state() -> None:
    """Forget process-wide caches, last good data and pools, as a fresh server would."""
    clear_panel_caches()
    MEMORY.reset()
    db.close_pools()


@pytest.fixture
def dashboard(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[str]:
    """Environment pointing the dashboard at this test's database; caches cleared around it."""
    monkeypatch.setenv("JOBDASH_DATABASE_URL", database_url)
    monkeypatch.delenv("JOBDASH_READ_ONLY", raising=False)
    reset_state()
    yield database_url
    reset_state()


def run_app() -> AppTest:
    return AppTest.from_file(str(MAIN), default_timeout=60).run()
