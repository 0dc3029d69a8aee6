"""What a Procrastinate App schedules: its periodic tasks as plain definitions.

The worker publishes them (jobdash_periodic_tasks) and the dashboard reads them back, or takes
them straight from an App named by JOBDASH_APP: one record and one builder for both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from procrastinate import App, jobs


@dataclass(frozen=True)
class PeriodicDefinition:
    task_name: str
    periodic_id: str
    cron: str
    queue: str
    configured_kwargs: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # When a worker first published it; ticks before then are not missed runs.
    known_since: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.task_name, self.periodic_id)


def json_safe(value: Any) -> Any:
    """Configured kwargs as JSON (a datetime or other object becomes its text)."""
    return json.loads(json.dumps(value, default=str))


def periodic_definitions(app: App) -> list[PeriodicDefinition]:
    """The App's periodic tasks, sorted; its import paths are imported first (the registry
    fills as modules are imported)."""
    app.perform_import_paths()
    definitions = []
    for periodic_task in app.periodic_registry.periodic_tasks.values():
        options = periodic_task.configure_kwargs or {}
        kwargs = dict(options)
        definitions.append(
            PeriodicDefinition(
                task_name=periodic_task.task.name,
                periodic_id=periodic_task.periodic_id or "",
                cron=periodic_task.cron,
                queue=options.get("queue") or periodic_task.task.queue or jobs.DEFAULT_QUEUE,
                configured_kwargs=json_safe(kwargs),
            )
        )
    return sorted(definitions, key=lambda d: d.key)
