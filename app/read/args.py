"""Job args as every read model returns them: sensitive values hidden (JOBDASH_REDACT_ARGS)."""

from __future__ import annotations

from jobdash.app.rules.redact import redact, redact_json_text
from jobdash.app.rules.text import cut_text, payload_preview
from jobdash.core.jsontypes import Json
from jobdash.core.settings import load_redact_patterns


def patterns() -> tuple[str, ...]:
    return load_redact_patterns()


def redact_args(args: Json) -> Json:
    return redact(args, patterns())


def redact_args_text(text: str | None) -> str | None:
    return None if text is None else redact_json_text(text, patterns())


def preview_args(args: Json, args_text: str | None = None, limit: int | None = None) -> str:
    """A one-line preview: from the args themselves, or (too big to ship) from their first
    characters; redacted either way."""
    if args is not None:
        redacted = redact_args(args)
        return payload_preview(redacted) if limit is None else payload_preview(redacted, limit)
    text = redact_args_text(args_text) or ""
    return cut_text(text) if limit is None else cut_text(text, limit)
