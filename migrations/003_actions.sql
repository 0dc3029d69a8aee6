-- Failed-job management: the audit trail of operator actions and the archive of deleted jobs.
-- Installs before 008 also built three partial indexes on Procrastinate's tables here for the
-- failed-jobs list; 008_failed_jobs.sql replaces them with a table of ours and drops them.

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
