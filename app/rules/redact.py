"""Sensitive args (JOBDASH_REDACT_ARGS): values of matching keys are shown as `••••`.

A pattern matches a key case-insensitively: as a substring ("token" matches "stripe_token"),
or as a shell-style pattern when it has `*`, `?` or `[` ("card_*"). Keys match at any depth,
inside lists too; the whole value of a matching key goes, whatever it holds. Over-matching
("card" also hides "discard_after") errs on the side of hiding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

from jobdash.core.jsontypes import Json

MASK = "••••"
_GLOB = re.compile(r"[*?\[]")
# A JSON object key in (possibly cut) JSON text: a string followed by a colon.
_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*')


def key_is_redacted(key: object, patterns: Sequence[str]) -> bool:
    name = str(key).lower()
    for pattern in patterns:
        if _GLOB.search(pattern):
            if fnmatchcase(name, pattern):
                return True
        elif pattern in name:
            return True
    return False


def redact(value: Json, patterns: Sequence[str]) -> Json:
    """`value` with the value of every matching key replaced by MASK (a new structure)."""
    if not patterns:
        return value
    if isinstance(value, dict):
        return {
            k: MASK if key_is_redacted(k, patterns) else redact(v, patterns)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, patterns) for v in value]
    return value


def redacted_keys(value: Any, patterns: Sequence[str]) -> list[str]:
    """The matching keys in `value`, at any depth, in the order met."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if key_is_redacted(k, patterns):
                    found.append(str(k))
                else:
                    walk(v)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    if patterns:
        walk(value)
    return found


def _decoded_key(raw: str) -> str:
    try:
        return str(json.loads(f'"{raw}"'))
    except ValueError:
        return raw


def redact_json_text(text: str, patterns: Sequence[str]) -> str:
    """JSON text (whole, or cut short for a preview) with matching values hidden.

    Whole JSON is parsed and redacted. Cut JSON cannot be parsed: it is cut again just before
    the value of the first matching key, which is followed by MASK and "…" — nothing after a
    sensitive key is shown."""
    if not patterns:
        return text
    try:
        parsed = json.loads(text)
    except ValueError:
        for match in _KEY.finditer(text):
            if key_is_redacted(_decoded_key(match.group(1)), patterns):
                return text[: match.end()] + f'"{MASK}"…'
        return text
    return json.dumps(redact(parsed, patterns), ensure_ascii=False)


def redact_rows(
    rows: Iterable[Sequence[Any]], column: int, patterns: Sequence[str]
) -> Iterable[list[Any]]:
    """Rows whose `column` holds args (JSON text, or parsed), redacted; lazily, for exports."""
    for row in rows:
        out = list(row)
        value = out[column]
        if isinstance(value, str):
            out[column] = redact_json_text(value, patterns)
        elif value is not None:
            out[column] = redact(value, patterns)
        yield out
