"""What an args search means: a JSON object the job's args must contain (`args @> …`).

Two spellings: JSON (`{"customer_id": 42}`, nested objects and lists as jsonb containment
takes them) or `key=value`, where the value is read as JSON when it parses (42, true, "42",
[1, 2]) and as a string otherwise, and a dotted key reaches into nested objects
(`customer.id=42` → `{"customer": {"id": 42}}`). Redacted keys (JOBDASH_REDACT_ARGS) are never
searchable: a search naming one is refused, or it would tell their values one guess at a time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from jobdash.app.rules.redact import redacted_keys
from jobdash.core.errors import FilterError
from jobdash.core.jsontypes import Json

MAX_SEARCH_CHARS = 2000


def parse_args_search(text: str, redact_patterns: Sequence[str]) -> dict[str, Json]:
    """The JSON object to search args for; FilterError (one line) when it cannot be used."""
    text = text.strip()
    if not text:
        raise FilterError("args: empty search")
    if len(text) > MAX_SEARCH_CHARS:
        raise FilterError(f"args: longer than {MAX_SEARCH_CHARS} characters")
    if "\x00" in text:
        raise FilterError("args: contains a NUL character")
    wanted = _from_json(text) if text.startswith("{") else _from_shorthand(text)
    hidden = redacted_keys(wanted, redact_patterns)
    if hidden:
        raise FilterError(
            f"args: {hidden[0]!r} is a redacted key (JOBDASH_REDACT_ARGS): it cannot be searched"
        )
    return wanted


def _from_json(text: str) -> dict[str, Json]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FilterError(f"args: not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise FilterError('args: JSON search must be an object such as {"customer_id": 42}')
    return value


def _from_shorthand(text: str) -> dict[str, Json]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise FilterError('args: use key=value or a JSON object such as {"customer_id": 42}')
    path = key.split(".")
    if any(not part.strip() for part in path):
        raise FilterError(f"args: empty part in key {key!r}")
    raw = raw.strip()
    try:
        value: Json = json.loads(raw)
    except ValueError:
        value = raw
    nested: dict[str, Json] = {path[-1].strip(): value}
    for part in reversed(path[:-1]):
        nested = {part.strip(): nested}
    return nested


def describe_args_search(wanted: Mapping[str, Json]) -> str:
    """The search as compact JSON (for the URL, the audit log and messages)."""
    return json.dumps(wanted, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
