-- Operator controls that instrumented workers honour: paused queues and disabled periodic
-- tasks. Our own tables only; nothing on Procrastinate's. Every step is idempotent.

-- step: paused queues
-- A paused queue: instrumented workers fetch no job of it (running jobs finish); read by each
-- instrumented worker once per poll interval, so it stays a handful of rows.
CREATE TABLE IF NOT EXISTS jobdash_queue_pauses (
    queue_name text PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now(),
    paused_by text NOT NULL
);

-- step: disabled periodic tasks
-- A disabled periodic task: instrumented workers' periodic deferrer defers none of its ticks.
CREATE TABLE IF NOT EXISTS jobdash_periodic_disabled (
    task_name text NOT NULL,
    periodic_id text NOT NULL DEFAULT '',
    disabled_at timestamptz NOT NULL DEFAULT now(),
    disabled_by text NOT NULL,
    PRIMARY KEY (task_name, periodic_id)
);
