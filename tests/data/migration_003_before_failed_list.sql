-- Failed-job management: the audit trail of operator actions, the archive of deleted jobs,
-- and the indexes that keep the failed-jobs list fast deep into 100,000 failures.

-- step: create jobdash_audit_log
-- One row per action (retry, delete, restore, retry_stalled), written in the same
-- transaction as the change it records (bulk actions: one row per batch).
CREATE TABLE IF NOT EXISTS jobdash_audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    action text NOT NULL,
    job_ids bigint[] NOT NULL DEFAULT '{}',
    filter jsonb,
    done integer NOT NULL,
    skipped integer NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS jobdash_audit_log_at_idx ON jobdash_audit_log (at DESC, id DESC);

-- step: create jobdash_deleted_jobs
-- A deleted job as it was: the row, its events and its recorded errors, each as jsonb of the
-- original table's row type, so a restore puts back exactly what was there (ids included).
CREATE TABLE IF NOT EXISTS jobdash_deleted_jobs (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL,
    queue_name text NOT NULL,
    task_name text NOT NULL,
    status text NOT NULL,
    job jsonb NOT NULL,
    events jsonb NOT NULL DEFAULT '[]'::jsonb,
    errors jsonb NOT NULL DEFAULT '[]'::jsonb,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    deleted_by text NOT NULL,
    restored_at timestamptz,
    restored_by text
);
CREATE INDEX IF NOT EXISTS jobdash_deleted_jobs_deleted_at_idx
    ON jobdash_deleted_jobs (deleted_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobdash_deleted_jobs_job_id_idx ON jobdash_deleted_jobs (job_id, id DESC);
-- At most one live (not restored) archive per job: a job must exist again to be deleted again.
CREATE UNIQUE INDEX IF NOT EXISTS jobdash_deleted_jobs_live_idx ON jobdash_deleted_jobs (job_id)
    WHERE restored_at IS NULL;

-- step: build index jobdash_events_failure_at_idx
-- Failure time of a job = the event of its last move into `failed` (doing→failed writes
-- 'failed', todo→failed writes 'cancelled'). Walking this index newest first gives keyset
-- pages of failed jobs without sorting all of them.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobdash_events_failure_at_idx
    ON procrastinate_events (at DESC, id DESC)
    WHERE type IN ('failed', 'cancelled');

-- step: build index jobdash_events_job_failure_idx
-- Finding a job's latest failure event, and whether a later one exists.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobdash_events_job_failure_idx
    ON procrastinate_events (job_id, id DESC)
    WHERE type IN ('failed', 'cancelled');

-- step: build index jobdash_jobs_failed_id_idx
-- The failed jobs alone, in id order: batches of "all matching" and cheap failed counts.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobdash_jobs_failed_id_idx
    ON procrastinate_jobs (id) WHERE status = 'failed';
