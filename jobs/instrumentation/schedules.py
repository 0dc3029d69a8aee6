"""Schedule publishing: an App's periodic task definitions in `jobdash_periodic_tasks`,
so the dashboard knows the schedules without importing the team's code."""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from procrastinate import App, jobs

from jobdash.jobs.instrumentation import queries

logger = logging.getLogger(__name__)

# Separates task name and periodic_id in the keys compared by DELETE_STALE_PERIODIC_TASKS.
KEY_SEPARATOR = chr(31)


@dataclass(frozen=True)
class PeriodicDefinition:
    task_name: str
    periodic_id: str
    cron: str
    queue_name: str
    configured_kwargs: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.task_name}{KEY_SEPARATOR}{self.periodic_id}"


def json_safe(value: Any) -> Any:
    """Configured kwargs as JSON (a datetime or other object becomes its text)."""
    return json.loads(json.dumps(value, default=str))


def periodic_definitions(app: App) -> list[PeriodicDefinition]:
    """The App's periodic tasks, import paths imported first (the registry fills on import)."""
    app.perform_import_paths()
    definitions = []
    for periodic_task in app.periodic_registry.periodic_tasks.values():
        kwargs = dict(periodic_task.configure_kwargs)
        definitions.append(
            PeriodicDefinition(
                task_name=periodic_task.task.name,
                periodic_id=periodic_task.periodic_id,
                cron=periodic_task.cron,
                queue_name=kwargs.get("queue") or periodic_task.task.queue or jobs.DEFAULT_QUEUE,
                configured_kwargs=json_safe(kwargs),
            )
        )
    return sorted(definitions, key=lambda d: d.key)


def publisher_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def publish_periodic_tasks(app: App) -> int:
    """Upsert the App's definitions; return how many. Failures are logged, never raised."""
    try:
        definitions = periodic_definitions(app)
        publisher = publisher_name()
        for definition in definitions:
            await app.connector.execute_query_async(
                queries.UPSERT_PERIODIC_TASK,
                task_name=definition.task_name,
                periodic_id=definition.periodic_id,
                cron=definition.cron,
                queue_name=definition.queue_name,
                configured_kwargs=definition.configured_kwargs,
                published_by=publisher,
            )
        await app.connector.execute_query_async(
            queries.DELETE_STALE_PERIODIC_TASKS,
            task_names=sorted(app.tasks),
            current_keys=[d.key for d in definitions],
        )
        return len(definitions)
    except Exception:
        logger.warning("jobdash: could not publish the periodic tasks", exc_info=True)
        return 0
