"""The Jobs page's filter: what it holds, how it lives in the URL and on the command line.

States are disjoint, so their counts add up: ready (todo, runnable now), scheduled (todo, in the
future), doing, abort requested (doing, the worker asked to stop it), succeeded, failed,
cancelled, aborted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from jobdash.app.read.failed_jobs import filter_texts, filter_time, filter_values, query_params
from jobdash.app.rules.args_search import describe_args_search, parse_args_search
from jobdash.core.errors import FilterError
from jobdash.core.jsontypes import Json

STATES = (
    "ready", "scheduled", "doing", "abort_requested", "succeeded", "failed", "cancelled",
    "aborted",
)  # fmt: skip
STATE_WORDS = {
    "ready": "Ready", "scheduled": "Scheduled", "doing": "Doing",
    "abort_requested": "Abort requested", "succeeded": "Succeeded", "failed": "Failed",
    "cancelled": "Cancelled", "aborted": "Aborted",
}  # fmt: skip
TERMINAL_STATES = ("succeeded", "failed", "cancelled", "aborted")
MAX_IDS = 1000
PRIORITY_RANGE = (-(2**31), 2**31 - 1)
TIME_NAMES = ("deferred_since", "deferred_until", "finished_since", "finished_until")


def state_of(
    status: str, scheduled_at: datetime | None, abort_requested: bool, now: datetime
) -> str:
    """The state a job row is in (Procrastinate's status, split as the page splits it)."""
    if status == "todo":
        return "scheduled" if scheduled_at is not None and scheduled_at > now else "ready"
    if status == "doing":
        return "abort_requested" if abort_requested else "doing"
    if status == "aborting":  # legacy (Procrastinate < 3.0)
        return "abort_requested"
    return status


@dataclass(frozen=True)
class JobFilter:
    """Every field optional; hashable (it keys the page cache): ids a tuple, args the search
    as compact JSON."""

    state: str | None = None
    queue: str | None = None
    task: str | None = None
    ids: tuple[int, ...] = ()
    lock: str | None = None
    queueing_lock: str | None = None
    priority_min: int | None = None
    priority_max: int | None = None
    deferred_since: datetime | None = None
    deferred_until: datetime | None = None
    finished_since: datetime | None = None
    finished_until: datetime | None = None
    worker: int | None = None
    args: str | None = None

    def is_empty(self) -> bool:
        return not any(value not in (None, ()) for _, value in filter_values(self))

    def only_state(self) -> bool:
        return self.state is not None and JobFilter(state=self.state) == self

    def to_query_params(self) -> dict[str, str]:
        return query_params((n, v) for n, v in filter_values(self) if v not in (None, ()))

    def describe(self) -> dict[str, str]:
        """The filter for the audit log and messages (JSON-ready)."""
        return self.to_query_params()

    def args_object(self) -> dict[str, Json] | None:
        """The args search as an object (`args` is its compact JSON, describe_args_search)."""
        return cast("dict[str, Json]", json.loads(self.args)) if self.args else None

    @classmethod
    def from_query_params(
        cls,
        params: Mapping[str, str],
        redact_patterns: Sequence[str],
        *,
        only_filter_keys: bool = False,
    ) -> JobFilter:
        """A filter from URL parameters or CLI options; FilterError names the first value that
        cannot be used (a bad value never widens the result)."""
        text = filter_texts(cls, params, only_filter_keys=only_filter_keys)
        state = text["state"]
        if state is not None and state not in STATES:
            raise FilterError(f"state: {state[:40]!r} is not one of {', '.join(STATES)}")
        times = {
            name: filter_time(name, text[name], end_of_day=name.endswith("until"))
            for name in TIME_NAMES
        }
        for low, high in (
            ("deferred_since", "deferred_until"),
            ("finished_since", "finished_until"),
        ):
            since, until = times[low], times[high]
            if since and until and since >= until:
                raise FilterError(f"{low} must be before {high}")
        priority_min = _integer("priority_min", text["priority_min"], PRIORITY_RANGE)
        priority_max = _integer("priority_max", text["priority_max"], PRIORITY_RANGE)
        if priority_min is not None and priority_max is not None and priority_min > priority_max:
            raise FilterError("priority_min must not be above priority_max")
        args = text["args"]
        return cls(
            state=state,
            queue=text["queue"],
            task=text["task"],
            ids=parse_ids(text["ids"]),
            lock=text["lock"],
            queueing_lock=text["queueing_lock"],
            priority_min=priority_min,
            priority_max=priority_max,
            worker=_integer("worker", text["worker"], (1, 2**63 - 1)),
            args=describe_args_search(parse_args_search(args, redact_patterns)) if args else None,
            deferred_since=times["deferred_since"],
            deferred_until=times["deferred_until"],
            finished_since=times["finished_since"],
            finished_until=times["finished_until"],
        )


def _integer(name: str, raw: str | None, bounds: tuple[int, int]) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise FilterError(f"{name}: not a whole number: {raw[:40]!r}") from None
    if not bounds[0] <= value <= bounds[1]:
        raise FilterError(f"{name}: out of range: {value}")
    return value


def parse_ids(raw: str | None) -> tuple[int, ...]:
    """ "12, 13 14" → (12, 13, 14): distinct, in the order given, at most MAX_IDS."""
    if not raw:
        return ()
    ids: list[int] = []
    for part in raw.replace(",", " ").split():
        try:
            job_id = int(part.lstrip("#"))
        except ValueError:
            raise FilterError(f"ids: not a job id: {part[:40]!r}") from None
        if not 0 < job_id < 2**63:
            raise FilterError(f"ids: not a job id: {part[:40]!r}")
        if job_id not in ids:
            ids.append(job_id)
    if len(ids) > MAX_IDS:
        raise FilterError(f"ids: at most {MAX_IDS:,} job ids at once")
    return tuple(ids)
