-- What the instrumented worker records and Procrastinate does not keep (our tables only).

-- step: create jobdash_job_errors
-- One row per failed attempt, written by the worker middleware.
CREATE TABLE IF NOT EXISTS jobdash_job_errors (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    exception_type text NOT NULL,
    message text NOT NULL,
    traceback text NOT NULL,
    worker_id bigint,
    hostname text,
    pid integer,
    will_retry boolean NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
-- No foreign key: errors of a deleted job are archived with it, and a missing job must never
-- make the middleware's insert fail.
CREATE INDEX IF NOT EXISTS jobdash_job_errors_job_id_idx ON jobdash_job_errors (job_id, attempt DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobdash_job_errors_recorded_at_idx ON jobdash_job_errors (recorded_at);

-- step: create jobdash_workers
-- Host metrics of instrumented workers, keyed by Procrastinate's worker id.
CREATE TABLE IF NOT EXISTS jobdash_workers (
    worker_id bigint PRIMARY KEY,
    worker_name text,
    hostname text NOT NULL,
    pid integer NOT NULL,
    queues text[],
    concurrency integer NOT NULL,
    cpu_percent double precision,
    memory_mb double precision,
    started_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    stopped_at timestamptz,
    versions jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS jobdash_workers_updated_at_idx ON jobdash_workers (updated_at);

-- step: create jobdash_periodic_tasks
-- Periodic task definitions published by workers at start.
CREATE TABLE IF NOT EXISTS jobdash_periodic_tasks (
    task_name text NOT NULL,
    periodic_id text NOT NULL DEFAULT '',
    cron text NOT NULL,
    queue_name text NOT NULL,
    configured_kwargs jsonb NOT NULL DEFAULT '{}'::jsonb,
    published_by text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    -- Ticks before a schedule was first known are not missed runs (nobody was to run them).
    first_published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_name, periodic_id)
);
