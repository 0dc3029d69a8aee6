"""Every SQL statement the instrumentation runs, in one place.

Named `%(param)s` placeholders: the statements go through a Procrastinate connector's
`execute_query_async(query, **params)`.
"""

from __future__ import annotations

INSERT_JOB_ERROR = """
INSERT INTO jobdash_job_errors
    (job_id, attempt, exception_type, message, traceback, worker_id, hostname, pid, will_retry)
VALUES
    (%(job_id)s, %(attempt)s, %(exception_type)s, %(message)s, %(traceback)s,
     %(worker_id)s, %(hostname)s, %(pid)s, %(will_retry)s)
"""

# Worker ids are a Procrastinate identity, never reused: a conflict is our own heartbeat,
# so started_at keeps its first value.
UPSERT_WORKER = """
INSERT INTO jobdash_workers
    (worker_id, worker_name, hostname, pid, queues, concurrency, cpu_percent, memory_mb,
     started_at, updated_at, stopped_at, versions)
VALUES
    (%(worker_id)s, %(worker_name)s, %(hostname)s, %(pid)s, %(queues)s, %(concurrency)s,
     %(cpu_percent)s, %(memory_mb)s, now(), now(), NULL, %(versions)s)
ON CONFLICT (worker_id) DO UPDATE SET
    worker_name = EXCLUDED.worker_name,
    hostname = EXCLUDED.hostname,
    pid = EXCLUDED.pid,
    queues = EXCLUDED.queues,
    concurrency = EXCLUDED.concurrency,
    cpu_percent = EXCLUDED.cpu_percent,
    memory_mb = EXCLUDED.memory_mb,
    updated_at = now(),
    stopped_at = NULL,
    versions = EXCLUDED.versions
"""

MARK_WORKER_STOPPED = """
UPDATE jobdash_workers
SET stopped_at = now(), updated_at = now(), cpu_percent = NULL
WHERE worker_id = %(worker_id)s
"""

# Rows of workers gone for long are of no use to anyone; keeps the table small.
PRUNE_OLD_WORKERS = """
DELETE FROM jobdash_workers
WHERE updated_at < now() - make_interval(days => %(days)s)
"""

UPSERT_PERIODIC_TASK = """
INSERT INTO jobdash_periodic_tasks
    (task_name, periodic_id, cron, queue_name, configured_kwargs, published_by, published_at)
VALUES
    (%(task_name)s, %(periodic_id)s, %(cron)s, %(queue_name)s, %(configured_kwargs)s,
     %(published_by)s, now())
ON CONFLICT (task_name, periodic_id) DO UPDATE SET
    cron = EXCLUDED.cron,
    queue_name = EXCLUDED.queue_name,
    configured_kwargs = EXCLUDED.configured_kwargs,
    published_by = EXCLUDED.published_by,
    published_at = now()
"""

# A task this App defines but no longer schedules under that periodic_id: its old definition
# is stale. Rows of tasks this App does not know are left alone (another App may own them).
DELETE_STALE_PERIODIC_TASKS = """
DELETE FROM jobdash_periodic_tasks
WHERE task_name = ANY(%(task_names)s)
  AND NOT ((task_name || chr(31) || periodic_id) = ANY(%(current_keys)s))
"""

# What operators paused and disabled (migrations/007_controls.sql), read once per poll interval.
CONTROLS = """
SELECT (SELECT coalesce(array_agg(queue_name), '{}') FROM jobdash_queue_pauses) AS paused,
       (SELECT coalesce(array_agg(task_name || chr(31) || periodic_id), '{}')
          FROM jobdash_periodic_disabled) AS disabled
"""

# The queues there are (jobdash_queue_names: one probe of Procrastinate's queue_name index per
# queue, however many jobs each holds): the allow-list of a worker listening to every queue
# while some queue is paused. Read only while a queue is paused. A queue without waiting jobs
# in the list costs the fetch nothing.
QUEUES_WITH_WAITING_JOBS = """
SELECT coalesce(array_agg(name), '{}') AS queues FROM jobdash_queue_names() name
"""
