"""Schedule publishing: an App's periodic task definitions in `jobdash_periodic_tasks`,
so the dashboard knows the schedules without importing the team's code."""

from __future__ import annotations

import logging
import os
import socket

from procrastinate import App

from jobdash.core.periodic import PeriodicDefinition, periodic_definitions
from jobdash.jobs.instrumentation import queries

logger = logging.getLogger(__name__)

# Separates task name and periodic_id in the keys compared by DELETE_STALE_PERIODIC_TASKS.
KEY_SEPARATOR = chr(31)


def _key_text(definition: PeriodicDefinition) -> str:
    return f"{definition.task_name}{KEY_SEPARATOR}{definition.periodic_id}"


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
                queue_name=definition.queue,
                configured_kwargs=definition.configured_kwargs,
                published_by=publisher,
            )
        await app.connector.execute_query_async(
            queries.DELETE_STALE_PERIODIC_TASKS,
            task_names=sorted(app.tasks),
            current_keys=[_key_text(d) for d in definitions],
        )
        return len(definitions)
    except Exception:
        logger.warning("jobdash: could not publish the periodic tasks", exc_info=True)
        return 0
