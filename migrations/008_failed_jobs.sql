-- The failed jobs, listed in a table of ours: jobdash_failed_jobs holds (job, queue, task, when
-- it failed) for each failed job, kept by the same WHEN-filtered row triggers as the ledger of
-- 006 (only a move into or out of `failed` runs plpgsql). The failed-jobs page, the dashboard's
-- failed panel and the Jobs page's failed walk read it, joined with procrastinate_jobs on the id
-- and status = 'failed' (a row left behind never shows). It replaces 003's three partial
-- indexes on Procrastinate's tables, dropped at the end: every index of ours there cost each
-- batch defer 7-9 % (docs/benchmarks-overhead.md). Our writes inside Procrastinate's
-- transactions give way rather than fail them: a jobdash table that refuses writes or is
-- locked costs a warning and a count to repair with jobdash_recount_failed(), never a job's
-- outcome.

-- step: create jobdash_failed_jobs
-- One row per failed job. `failed_at` is when it last moved into `failed` (the trigger's now(),
-- the time of the 'failed' event Procrastinate writes in the same transaction). The readers'
-- orders: newest failure first (keyset on failed_at, job_id), per queue, per task; bulk actions
-- walk job ids (the primary key).
CREATE TABLE IF NOT EXISTS jobdash_failed_jobs (
    job_id bigint PRIMARY KEY,
    queue_name text NOT NULL,
    task_name text NOT NULL,
    failed_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS jobdash_failed_jobs_failed_at_idx
    ON jobdash_failed_jobs (failed_at DESC, job_id DESC);
CREATE INDEX IF NOT EXISTS jobdash_failed_jobs_queue_idx
    ON jobdash_failed_jobs (queue_name, failed_at DESC, job_id DESC);
CREATE INDEX IF NOT EXISTS jobdash_failed_jobs_task_idx
    ON jobdash_failed_jobs (task_name, failed_at DESC, job_id DESC);

-- step: remember when an archived job failed
-- A deleted failed job's failure time, so a restore puts it back in the list where it was.
ALTER TABLE jobdash_deleted_jobs ADD COLUMN IF NOT EXISTS failed_at timestamptz;

-- step: keep the failed list with the ledger
-- The one function the ledger's triggers (006) run: a move into `failed` appends +1 and lists
-- the job, a move out (or a delete) appends -1 and takes it off, a failed job changing queue
-- or task moves its -1/+1 and its row. These writes run inside Procrastinate's transaction
-- (a worker's finish, a retry, a delete): one subtransaction catches any error of ours (a full
-- disk, a table locked past lock_timeout) and turns it into a WARNING, so the job's change
-- commits and only our count is off until jobdash_recount_failed(). The subtransaction is entered
-- only by the rows the WHEN clauses let through (docs/benchmarks-overhead.md measures it).
CREATE OR REPLACE FUNCTION jobdash_count_failed_row() RETURNS trigger LANGUAGE plpgsql
    SET lock_timeout = '500ms' AS $$
DECLARE
    _id bigint;
    _was_failed boolean := TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'failed';
    _is_failed boolean := TG_OP IN ('UPDATE', 'INSERT') AND NEW.status = 'failed';
BEGIN
    BEGIN
        IF _was_failed THEN
            INSERT INTO jobdash_failed_counts (queue_name, task_name, delta)
            VALUES (OLD.queue_name, OLD.task_name, -1) RETURNING id INTO _id;
            IF NOT _is_failed THEN
                DELETE FROM jobdash_failed_jobs WHERE job_id = OLD.id;
            END IF;
        END IF;
        IF _is_failed THEN
            INSERT INTO jobdash_failed_counts (queue_name, task_name, delta)
            VALUES (NEW.queue_name, NEW.task_name, 1) RETURNING id INTO _id;
            IF _was_failed THEN
                -- Still failed, another queue or task: the failure time stays.
                INSERT INTO jobdash_failed_jobs (job_id, queue_name, task_name, failed_at)
                VALUES (NEW.id, NEW.queue_name, NEW.task_name, now())
                ON CONFLICT (job_id) DO UPDATE
                    SET queue_name = excluded.queue_name, task_name = excluded.task_name;
            ELSE
                INSERT INTO jobdash_failed_jobs (job_id, queue_name, task_name, failed_at)
                VALUES (NEW.id, NEW.queue_name, NEW.task_name, now())
                ON CONFLICT (job_id) DO UPDATE
                    SET queue_name = excluded.queue_name, task_name = excluded.task_name,
                        failed_at = excluded.failed_at;
            END IF;
        END IF;
        -- Every 1000th ledger row, compact here too: the ledger stays small even when no
        -- instrumented worker runs the maintenance task.
        IF _id % 1000 = 0 THEN
            PERFORM jobdash_compact_failed_counts();
        END IF;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'jobdash: job % was not counted in the failed ledger and list: %',
            coalesce(NEW.id, OLD.id), SQLERRM
            USING HINT = 'the job''s own change is kept; run SELECT jobdash_recount_failed() '
                         'once Jobdash''s tables accept writes';
    END;
    RETURN NULL;
END;
$$;

-- TRUNCATE procrastinate_jobs: nothing is failed any more. Gives way likewise.
CREATE OR REPLACE FUNCTION jobdash_forget_failed_counts() RETURNS trigger LANGUAGE plpgsql
    SET lock_timeout = '500ms' AS $$
BEGIN
    BEGIN
        DELETE FROM jobdash_failed_counts;
        DELETE FROM jobdash_failed_jobs;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'jobdash: the failed ledger and list were not emptied: %', SQLERRM
            USING HINT = 'run SELECT jobdash_recount_failed() once Jobdash''s tables accept '
                         'writes';
    END;
    RETURN NULL;
END;
$$;

-- step: keep the events of a deleted open job, giving way likewise
-- 004's BEFORE DELETE trigger function, its writes in a subtransaction too: a full or locked
-- jobdash_deleted_job_events costs a WARNING (the rollup then misses that job's last minutes),
-- never Procrastinate's delete of a finished job (delete_jobs="always").
CREATE OR REPLACE FUNCTION jobdash_keep_recent_events_of_deleted_job() RETURNS trigger
    LANGUAGE plpgsql SET lock_timeout = '500ms'
AS $$
BEGIN
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
            INSERT INTO jobdash_deleted_job_events
                (event_id, job_id, queue_name, task_name, type, at)
            VALUES (
                -nextval('jobdash_synthetic_event_id_seq'), OLD.id, OLD.queue_name,
                OLD.task_name,
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
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'jobdash: the recent events of deleted job % were not kept: %',
            OLD.id, SQLERRM
            USING HINT = 'the delete is kept; the history rollup misses that job''s last minutes';
    END;
    RETURN OLD;
END;
$$;

-- step: create the failed-list functions
-- The failure time of a job already failed when it is listed without its trigger (backfill,
-- recount): its last move into `failed` ('failed' from doing, 'cancelled' from todo, found
-- through Procrastinate's index of events by job), else its last recorded error, else now.
CREATE OR REPLACE FUNCTION jobdash_failure_time(_job_id bigint)
    RETURNS timestamptz LANGUAGE sql STABLE AS $$
    -- `e.id + 0`: ordering by the bare id lets the planner walk the events' primary key
    -- backwards until it meets this job, which it picks when its statistics are stale (right
    -- after a bulk load, when a recount is run): one pass over every event per failed job.
    -- The job_id index and a sort of the job's few events is always the right plan.
    SELECT coalesce(
        (SELECT e.at FROM procrastinate_events e
          WHERE e.job_id = _job_id AND e.type IN ('failed', 'cancelled')
          ORDER BY e.id + 0 DESC LIMIT 1),
        (SELECT max(r.recorded_at) FROM jobdash_job_errors r WHERE r.job_id = _job_id),
        now())
$$;

-- One batch of the backfill: the failed jobs among the next `_batch_size` job ids. `_progress`
-- is {last job id done, last job id to do}: NULL on the first call, which stops at the newest
-- job then (a job inserted later is listed by the trigger, already in place); returns the next
-- progress, NULL when done. A row the trigger wrote meanwhile is newer: a conflict keeps it.
CREATE OR REPLACE FUNCTION jobdash_backfill_failed_jobs(_progress bigint[], _batch_size integer)
    RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    _after bigint := coalesce(_progress[1], 0);  -- job ids start at 1
    _stop bigint := _progress[2];
    _last bigint;
BEGIN
    IF _stop IS NULL THEN
        SELECT max(id) INTO _stop FROM procrastinate_jobs;
    END IF;
    SELECT max(id) INTO _last FROM (
        SELECT id FROM procrastinate_jobs WHERE id > _after AND id <= _stop
        ORDER BY id LIMIT _batch_size
    ) batch;
    IF _last IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO jobdash_failed_jobs (job_id, queue_name, task_name, failed_at)
    SELECT j.id, j.queue_name, j.task_name, jobdash_failure_time(j.id)
      FROM procrastinate_jobs j
     WHERE j.id > _after AND j.id <= _last AND j.status = 'failed'
    ON CONFLICT (job_id) DO NOTHING;
    RETURN ARRAY[_last, _stop];
END;
$$;

-- Rows the list should not have: jobs no longer failed (or gone), queue or task out of date.
-- The readers never show them (they join on status = 'failed'); this keeps the table tidy.
CREATE OR REPLACE FUNCTION jobdash_tidy_failed_jobs() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    _gone bigint;
BEGIN
    DELETE FROM jobdash_failed_jobs f
     WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                        WHERE j.id = f.job_id AND j.status = 'failed');
    GET DIAGNOSTICS _gone = ROW_COUNT;
    UPDATE jobdash_failed_jobs f SET queue_name = j.queue_name, task_name = j.task_name
      FROM procrastinate_jobs j
     WHERE j.id = f.job_id AND (j.queue_name, j.task_name) <> (f.queue_name, f.task_name);
    RETURN _gone;
END;
$$;

-- Rebuild the ledger and the list from procrastinate_jobs: after writes made with triggers off
-- (jobdash seed, session_replication_role = replica, pg_restore --disable-triggers) or after
-- the trigger gave way to a refusing table. The ledger in one statement, one snapshot (a
-- transaction still running keeps its delta row and its status change unseen); the list
-- keeps the failure time of the jobs it has, finds it for the others, and drops the rest.
CREATE OR REPLACE FUNCTION jobdash_recount_failed() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    _total bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'jobdash_recount_failed() needs READ COMMITTED';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('jobdash_failed_counts'));
    WITH gone AS (
        DELETE FROM jobdash_failed_counts
    ), counted AS (
        INSERT INTO jobdash_failed_counts (queue_name, task_name, delta)
        SELECT queue_name, task_name, count(*) FROM procrastinate_jobs WHERE status = 'failed'
        GROUP BY queue_name, task_name
        RETURNING delta
    )
    SELECT coalesce(sum(delta), 0) INTO _total FROM counted;
    INSERT INTO jobdash_failed_jobs (job_id, queue_name, task_name, failed_at)
    SELECT j.id, j.queue_name, j.task_name, jobdash_failure_time(j.id)
      FROM procrastinate_jobs j
     WHERE j.status = 'failed'
       AND NOT EXISTS (SELECT 1 FROM jobdash_failed_jobs f WHERE f.job_id = j.id)
    ON CONFLICT (job_id) DO NOTHING;
    PERFORM jobdash_tidy_failed_jobs();
    RETURN _total;
END;
$$;

-- step (batched): list the failed jobs there are (backfill)
-- After the trigger function lists them: from here on each move into or out of `failed` writes
-- its row, the backfill adds the jobs that were failed before.
SELECT jobdash_backfill_failed_jobs(%(cursor)s, %(batch_size)s);

-- step: forget listed jobs that moved on while the backfill ran
-- A job that left `failed` while its batch ran keeps a row when its trigger looked before the
-- batch committed. Such a move is a transaction writing procrastinate_jobs: wait (up to a
-- minute) for every one running now, then remove the rows of jobs no longer failed. A row
-- still left is never shown (the readers join on status) and goes at the next recount.
DO $$
DECLARE
    _writers text[] := ARRAY(
        SELECT DISTINCT l.virtualtransaction FROM pg_locks l
        WHERE l.relation = 'procrastinate_jobs'::regclass AND l.mode = 'RowExclusiveLock'
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.pid <> pg_backend_pid()
    );
    _until timestamptz := clock_timestamp() + interval '1 minute';
BEGIN
    WHILE EXISTS (SELECT 1 FROM pg_locks l WHERE l.virtualtransaction = ANY (_writers))
          AND clock_timestamp() < _until LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
    PERFORM jobdash_tidy_failed_jobs();
END;
$$;

-- step: drop index jobdash_events_failure_at_idx
DROP INDEX CONCURRENTLY IF EXISTS jobdash_events_failure_at_idx;

-- step: drop index jobdash_events_job_failure_idx
DROP INDEX CONCURRENTLY IF EXISTS jobdash_events_job_failure_idx;

-- step: drop index jobdash_jobs_failed_id_idx
DROP INDEX CONCURRENTLY IF EXISTS jobdash_jobs_failed_id_idx;
