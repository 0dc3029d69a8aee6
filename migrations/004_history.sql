-- Throughput history: our own bucket tables, so history outlives Procrastinate's pruning.
-- Minute and hour tables have the same columns; hours are recomputed from minutes by the
-- rollup, so minutes can be dropped after their retention without losing the totals.

-- step: create the throughput history tables
-- Job outcomes and durations per (minute|hour, queue, task). duration_bin_NN counts finished
-- attempts in bin NN of a fixed log-scale histogram (bounds in jobs/rollup.py, bin 00 is
-- "< 1 ms"), so percentiles can be read back from any set of buckets by summing the bins.
-- One column per bin rather than an int[]: summing 22 plain columns over a 90-day range is
-- ~10x faster than summing 22 array subscripts (each subscript detoasts and copies the array).
CREATE TABLE IF NOT EXISTS jobdash_history_minute (
    bucket timestamptz NOT NULL,
    queue_name text NOT NULL,
    task_name text NOT NULL,
    started integer NOT NULL DEFAULT 0,
    succeeded integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    retried integer NOT NULL DEFAULT 0,
    cancelled integer NOT NULL DEFAULT 0,
    aborted integer NOT NULL DEFAULT 0,
    duration_count integer NOT NULL DEFAULT 0,
    duration_sum_ms double precision NOT NULL DEFAULT 0,
    duration_max_ms double precision,
    duration_bin_00 integer NOT NULL DEFAULT 0,
    duration_bin_01 integer NOT NULL DEFAULT 0,
    duration_bin_02 integer NOT NULL DEFAULT 0,
    duration_bin_03 integer NOT NULL DEFAULT 0,
    duration_bin_04 integer NOT NULL DEFAULT 0,
    duration_bin_05 integer NOT NULL DEFAULT 0,
    duration_bin_06 integer NOT NULL DEFAULT 0,
    duration_bin_07 integer NOT NULL DEFAULT 0,
    duration_bin_08 integer NOT NULL DEFAULT 0,
    duration_bin_09 integer NOT NULL DEFAULT 0,
    duration_bin_10 integer NOT NULL DEFAULT 0,
    duration_bin_11 integer NOT NULL DEFAULT 0,
    duration_bin_12 integer NOT NULL DEFAULT 0,
    duration_bin_13 integer NOT NULL DEFAULT 0,
    duration_bin_14 integer NOT NULL DEFAULT 0,
    duration_bin_15 integer NOT NULL DEFAULT 0,
    duration_bin_16 integer NOT NULL DEFAULT 0,
    duration_bin_17 integer NOT NULL DEFAULT 0,
    duration_bin_18 integer NOT NULL DEFAULT 0,
    duration_bin_19 integer NOT NULL DEFAULT 0,
    duration_bin_20 integer NOT NULL DEFAULT 0,
    duration_bin_21 integer NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, queue_name, task_name)
);
-- A task filter reads only that task's rows (the primary key leads with the bucket, so without
-- this it would scan every series of the range). Copied to the hour table by LIKE … ALL.
CREATE INDEX IF NOT EXISTS jobdash_history_minute_task_idx ON jobdash_history_minute (task_name, bucket);
CREATE TABLE IF NOT EXISTS jobdash_history_hour (LIKE jobdash_history_minute INCLUDING ALL);

-- The same per (minute|hour, queue), summed over tasks: what charts read when no task filter is
-- set, so their cost grows with the number of queues, not of (queue, task) series. Recomputed
-- with the per-task rows, in the same transaction.
-- (Created and altered together, once: the ALTER is not repeatable.)
DO $$
BEGIN
    IF to_regclass('jobdash_history_queue_minute') IS NULL THEN
        CREATE TABLE jobdash_history_queue_minute (LIKE jobdash_history_minute INCLUDING DEFAULTS);
        ALTER TABLE jobdash_history_queue_minute
            DROP COLUMN task_name,
            ADD PRIMARY KEY (bucket, queue_name);
    END IF;
END;
$$;
CREATE TABLE IF NOT EXISTS jobdash_history_queue_hour (LIKE jobdash_history_queue_minute INCLUDING ALL);

-- step: create the queue depth tables
-- Queue depth sampled once per rollup run (one sample per minute); hours keep sums and maxima.
CREATE TABLE IF NOT EXISTS jobdash_queue_depth_minute (
    bucket timestamptz NOT NULL,
    queue_name text NOT NULL,
    samples integer NOT NULL,
    ready_sum bigint NOT NULL,
    scheduled_sum bigint NOT NULL,
    doing_sum bigint NOT NULL,
    ready_max integer NOT NULL,
    scheduled_max integer NOT NULL,
    doing_max integer NOT NULL,
    oldest_ready_age_max_s double precision,
    PRIMARY KEY (bucket, queue_name)
);
CREATE TABLE IF NOT EXISTS jobdash_queue_depth_hour (LIKE jobdash_queue_depth_minute INCLUDING ALL);

-- step: create the error group tables
-- Final failures per (bucket, queue, task, exception type), from jobdash_job_errors.
CREATE TABLE IF NOT EXISTS jobdash_error_groups_minute (
    bucket timestamptz NOT NULL,
    queue_name text NOT NULL,
    task_name text NOT NULL,
    exception_type text NOT NULL,
    failures integer NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    example_message text NOT NULL,
    example_job_id bigint,
    PRIMARY KEY (bucket, queue_name, task_name, exception_type)
);
CREATE TABLE IF NOT EXISTS jobdash_error_groups_hour (LIKE jobdash_error_groups_minute INCLUDING ALL);
-- Error groups are summed over a whole range, not charted per bucket: a range reads day rows
-- for its whole days and hour (or minute) rows only for its ragged ends, so the 90-day top-N
-- reads ~90 + 48 rows per group instead of ~2,160.
CREATE TABLE IF NOT EXISTS jobdash_error_groups_day (LIKE jobdash_error_groups_minute INCLUDING ALL);

-- step: create the rollup's bookkeeping tables
-- Bookkeeping of the rollup: when it last ran (the dashboard says "not recorded" otherwise).
CREATE TABLE IF NOT EXISTS jobdash_rollup_state (
    id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    last_run_at timestamptz,
    last_window_start timestamptz,
    last_backfill_at timestamptz
);
INSERT INTO jobdash_rollup_state (id) VALUES (1) ON CONFLICT (id) DO NOTHING;

-- (taken_at, last id of procrastinate_events at that time): any event whose `at` is >= taken_at
-- got its id later, so it is > last_event_id. Lets the rollup scan events by primary key
-- without an index on procrastinate_events.at.
CREATE TABLE IF NOT EXISTS jobdash_rollup_marks (
    taken_at timestamptz PRIMARY KEY,
    last_event_id bigint NOT NULL
);

-- step: create jobdash_deleted_job_events
-- Events of jobs deleted recently (dashboard delete, delete_jobs, short remove_old_jobs):
-- the rollup recomputes a trailing window, and must not lose what was counted there.
CREATE TABLE IF NOT EXISTS jobdash_deleted_job_events (
    event_id bigint PRIMARY KEY,
    job_id bigint NOT NULL,
    queue_name text NOT NULL,
    task_name text NOT NULL,
    type text NOT NULL,
    at timestamptz NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS jobdash_deleted_job_events_at_idx ON jobdash_deleted_job_events (at);
CREATE INDEX IF NOT EXISTS jobdash_deleted_job_events_job_id_idx
    ON jobdash_deleted_job_events (job_id, type, at);

-- Ids of the finish events we record ourselves (trigger below): negative, never a Procrastinate id.
CREATE SEQUENCE IF NOT EXISTS jobdash_synthetic_event_id_seq;

-- step: create function jobdash_keep_recent_events_of_deleted_job
CREATE OR REPLACE FUNCTION jobdash_keep_recent_events_of_deleted_job() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    -- Only the last hour matters: older minutes are never recomputed.
    INSERT INTO jobdash_deleted_job_events (event_id, job_id, queue_name, task_name, type, at)
    SELECT e.id, e.job_id, OLD.queue_name, OLD.task_name, e.type::text, e.at
      FROM procrastinate_events e
     WHERE e.job_id = OLD.id AND e.at >= now() - interval '1 hour'
    ON CONFLICT (event_id) DO NOTHING;
    -- A job deleted while `doing` is Procrastinate finishing it with delete_jobs="always" or
    -- "successful": it deletes the row instead of writing the final status, so no finish
    -- event exists. Record the outcome it had: aborted if an abort was requested, failed if
    -- an instrumented worker recorded an error for this attempt, else succeeded.
    IF OLD.status = 'doing' THEN
        INSERT INTO jobdash_deleted_job_events (event_id, job_id, queue_name, task_name, type, at)
        VALUES (
            -nextval('jobdash_synthetic_event_id_seq'), OLD.id, OLD.queue_name, OLD.task_name,
            CASE
                WHEN OLD.abort_requested THEN 'aborted'
                WHEN EXISTS (
                    SELECT 1 FROM jobdash_job_errors
                     WHERE job_id = OLD.id AND attempt = OLD.attempts + 1
                ) THEN 'failed'
                ELSE 'succeeded'
            END,
            now()
        );
    END IF;
    RETURN OLD;
END;
$$;

-- step: create trigger jobdash_keep_recent_events_of_deleted_job
DROP TRIGGER IF EXISTS jobdash_keep_recent_events_of_deleted_job ON procrastinate_jobs;
CREATE TRIGGER jobdash_keep_recent_events_of_deleted_job
    BEFORE DELETE ON procrastinate_jobs
    FOR EACH ROW EXECUTE FUNCTION jobdash_keep_recent_events_of_deleted_job();
