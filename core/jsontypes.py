"""JSON values as Python types: what json.loads and psycopg's json/jsonb loaders return."""

from __future__ import annotations

from typing import TypeAlias

Json: TypeAlias = None | bool | int | float | str | list["Json"] | dict[str, "Json"]
