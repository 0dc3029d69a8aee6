"""Running the dashboard under AppTest against a test database (shared by the AppTest modules)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from jobdash.app.cache import data
from jobdash.app.ui.navigation import MAIN_SCRIPT
from jobdash.core import pool as db

MAIN = MAIN_SCRIPT


def reset_state() -> None:
    """Forget process-wide caches, last good data and pools, as a fresh server would."""
    data.invalidate()
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
