"""Hostile text for tests of anything that shows or exports job data (a copy of
shared/testdata/hostile_strings.json, kept here so a clean clone has it)."""

from __future__ import annotations

import json
from pathlib import Path

HOSTILE = json.loads((Path(__file__).parent / "data" / "hostile_strings.json").read_text("utf-8"))
