"""Just enough of PostgreSQL's lexical rules to cut SQL into statements and read their shape.

`statements(text)` splits on top-level semicolons (not inside quotes, comments or dollar-quoted
bodies) and gives each statement twice: as written, and as a skeleton with comments removed,
literals emptied and whitespace collapsed, which is what the statement analysis matches on.
Dollar-quoted bodies (function bodies, DO blocks) are kept aside so they can be read too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class Statement:
    text: str
    skeleton: str
    bodies: tuple[str, ...]


def statements(text: str) -> list[Statement]:
    found: list[Statement] = []
    start = 0
    skeleton: list[str] = []
    bodies: list[str] = []
    i, n = 0, len(text)

    def close(end: int) -> None:
        shape = " ".join("".join(skeleton).split())
        if shape:
            found.append(Statement(text[start:end].strip(), shape, tuple(bodies)))

    while i < n:
        c = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            skeleton.append(" ")
        elif text.startswith("/*", i):
            i = _skip_block_comment(text, i)
            skeleton.append(" ")
        elif c == "'":
            escapes = i > 0 and text[i - 1] in "eE"
            i = _skip_string(text, i, escapes)
            skeleton.append("''")
        elif c == '"':
            end = text.find('"', i + 1)
            end = n if end < 0 else end + 1
            skeleton.append(text[i:end])
            i = end
        elif c == "$" and (match := _DOLLAR_TAG.match(text, i)) and not _in_word(text, i):
            tag = match.group(0)
            end = text.find(tag, match.end())
            end = n if end < 0 else end
            bodies.append(text[match.end() : end])
            skeleton.append(" $$ ")
            i = min(n, end + len(tag))
        elif c == ";":
            close(i)
            start, skeleton, bodies = i + 1, [], []
            i += 1
        else:
            skeleton.append(c)
            i += 1
    close(n)
    return found


def _in_word(text: str, i: int) -> bool:
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")


def _skip_block_comment(text: str, i: int) -> int:
    depth, i = 0, i
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)


def _skip_string(text: str, i: int, escapes: bool) -> int:
    i += 1
    while i < len(text):
        if escapes and text[i] == "\\":
            i += 2
        elif text[i] == "'":
            if text.startswith("''", i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return len(text)
