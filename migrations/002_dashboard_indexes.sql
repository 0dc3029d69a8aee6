-- What keeps the dashboard's loaders bounded by live work, not by history.
-- Procrastinate has no index on status, task_name, events.type or events.at.
-- DDL first (indexes on Procrastinate's tables CONCURRENTLY, each trigger in a short
-- transaction of its own), then the backfills, which run while the triggers already record
-- every change.

-- step: create jobdash_job_finishes
-- One row per finished job: its latest `succeeded`/`failed` event and how long that run took
-- (finish minus the latest `started` before it). Pairing each finish with its start at read
-- time costs ~150 ms per 60,000 finishes; here the pairing is paid once, by a trigger, when
-- the finish event is written. A job that finishes again (after a manual retry) keeps only its
-- latest finish, so counts are counts of jobs. Rows go away with their job.
CREATE TABLE IF NOT EXISTS jobdash_job_finishes (
    job_id bigint PRIMARY KEY,
    finished_at timestamptz NOT NULL,
    outcome procrastinate_job_event_type NOT NULL,
    duration_ms double precision
);
-- Window statistics (last hour by default) as one index-only range scan.
CREATE INDEX IF NOT EXISTS jobdash_job_finishes_at_idx ON jobdash_job_finishes (finished_at)
    INCLUDE (outcome, duration_ms);
-- Newest failures first, for the failed jobs panel.
CREATE INDEX IF NOT EXISTS jobdash_job_finishes_failed_idx
    ON jobdash_job_finishes (finished_at DESC, job_id DESC)
    WHERE outcome = 'failed';

-- step: create function jobdash_record_finish
CREATE OR REPLACE FUNCTION jobdash_record_finish() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    _started timestamptz;
BEGIN
    SELECT max(e.at) INTO _started
    FROM procrastinate_events e
    WHERE e.job_id = NEW.job_id AND e.type = 'started' AND e.at <= NEW.at;
    INSERT INTO jobdash_job_finishes (job_id, finished_at, outcome, duration_ms)
    VALUES (NEW.job_id, NEW.at, NEW.type, extract(epoch FROM NEW.at - _started) * 1000)
    ON CONFLICT (job_id) DO UPDATE
        SET finished_at = EXCLUDED.finished_at,
            outcome = EXCLUDED.outcome,
            duration_ms = EXCLUDED.duration_ms;
    RETURN NULL;
END;
$$;

-- step: create trigger jobdash_record_finish
DROP TRIGGER IF EXISTS jobdash_record_finish ON procrastinate_events;
CREATE TRIGGER jobdash_record_finish
    AFTER INSERT ON procrastinate_events
    FOR EACH ROW WHEN (NEW.type IN ('succeeded', 'failed'))
    EXECUTE FUNCTION jobdash_record_finish();

-- step: create function jobdash_forget_finishes
CREATE OR REPLACE FUNCTION jobdash_forget_finishes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM jobdash_job_finishes f USING deleted_jobs d WHERE f.job_id = d.id;
    RETURN NULL;
END;
$$;

-- step: create trigger jobdash_forget_finishes
-- Statement-level: one set-based delete however many jobs a prune removes.
DROP TRIGGER IF EXISTS jobdash_forget_finishes ON procrastinate_jobs;
CREATE TRIGGER jobdash_forget_finishes
    AFTER DELETE ON procrastinate_jobs
    REFERENCING OLD TABLE AS deleted_jobs
    FOR EACH STATEMENT
    EXECUTE FUNCTION jobdash_forget_finishes();

-- step: build index jobdash_jobs_open_idx
-- Ready / scheduled / doing counts per queue and each queue's oldest ready job: only the
-- open jobs, a small set that does not grow with history.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobdash_jobs_open_idx
    ON procrastinate_jobs (queue_name, status, scheduled_at, id)
    WHERE status IN ('todo', 'doing');

-- step: create jobdash_failed_counts
-- Exact failed counts (total and per queue) that do not grow with history: a ledger of
-- (queue, +/-n) rows appended by statement-level triggers on procrastinate_jobs for moves into
-- and out of `failed` only. Appending (never updating a counter row) means no hot row and no
-- lock between workers; a bulk statement appends one row per queue it touched. Reading sums
-- the ledger, which compaction keeps to about one row per queue (plus what came since).
CREATE TABLE IF NOT EXISTS jobdash_failed_counts (
    -- Only to pace compaction from the trigger (every COMPACT_EVERY-th row); no index needed.
    id bigint GENERATED ALWAYS AS IDENTITY,
    queue_name text NOT NULL,
    delta bigint NOT NULL
);

-- step: create the failed-count functions
-- Collapse the ledger into one row per queue. One compactor at a time (others skip: the next
-- call does it). Under READ COMMITTED the DELETE removes only committed rows, so deltas of
-- transactions still running stay and are counted once when they commit. Returns the number
-- of rows removed.
CREATE OR REPLACE FUNCTION jobdash_compact_failed_counts() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    _removed bigint;
BEGIN
    -- In REPEATABLE READ / SERIALIZABLE the snapshot may predate another compaction's commit.
    IF current_setting('transaction_isolation') <> 'read committed'
       OR NOT pg_try_advisory_xact_lock(hashtext('jobdash_failed_counts')) THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM jobdash_failed_counts RETURNING queue_name, delta
    ), kept AS (
        INSERT INTO jobdash_failed_counts (queue_name, delta)
        SELECT queue_name, sum(delta) FROM gone GROUP BY queue_name HAVING sum(delta) <> 0
    )
    SELECT count(*) INTO _removed FROM gone;
    RETURN _removed;
END;
$$;

-- Rebuild the ledger from procrastinate_jobs: after writes made with triggers off (jobdash
-- seed, session_replication_role = replica, pg_restore --disable-triggers). One statement, one
-- snapshot: a transaction still running keeps its delta row and its status change unseen.
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
        INSERT INTO jobdash_failed_counts (queue_name, delta)
        SELECT queue_name, count(*) FROM procrastinate_jobs WHERE status = 'failed'
        GROUP BY queue_name
        RETURNING delta
    )
    SELECT coalesce(sum(delta), 0) INTO _total FROM counted;
    RETURN _total;
END;
$$;

CREATE OR REPLACE FUNCTION jobdash_count_failed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    _compact boolean;
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH added AS (
            INSERT INTO jobdash_failed_counts (queue_name, delta)
            SELECT queue_name, count(*) FROM new_jobs WHERE status = 'failed'
            GROUP BY queue_name
            RETURNING id
        )
        SELECT bool_or(id % 1000 = 0) INTO _compact FROM added;
    ELSIF TG_OP = 'DELETE' THEN
        WITH added AS (
            INSERT INTO jobdash_failed_counts (queue_name, delta)
            SELECT queue_name, -count(*) FROM old_jobs WHERE status = 'failed'
            GROUP BY queue_name
            RETURNING id
        )
        SELECT bool_or(id % 1000 = 0) INTO _compact FROM added;
    ELSE
        -- A failed row updated without a status change (+1 -1) adds nothing.
        WITH moves AS (
            SELECT queue_name, 1 AS d FROM new_jobs WHERE status = 'failed'
            UNION ALL
            SELECT queue_name, -1 FROM old_jobs WHERE status = 'failed'
        ), added AS (
            INSERT INTO jobdash_failed_counts (queue_name, delta)
            SELECT queue_name, sum(d) FROM moves GROUP BY queue_name HAVING sum(d) <> 0
            RETURNING id
        )
        SELECT bool_or(id % 1000 = 0) INTO _compact FROM added;
    END IF;
    -- Every 1000th ledger row, compact here too: the ledger stays small even when no
    -- instrumented worker runs the maintenance task.
    IF _compact THEN
        PERFORM jobdash_compact_failed_counts();
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION jobdash_forget_failed_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM jobdash_failed_counts;
    RETURN NULL;
END;
$$;

-- step: create trigger jobdash_count_failed_insert
-- Transition tables cannot go with a column list (UPDATE OF status), hence plain UPDATE.
DROP TRIGGER IF EXISTS jobdash_count_failed_insert ON procrastinate_jobs;
CREATE TRIGGER jobdash_count_failed_insert
    AFTER INSERT ON procrastinate_jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobdash_count_failed();

-- step: create trigger jobdash_count_failed_update
DROP TRIGGER IF EXISTS jobdash_count_failed_update ON procrastinate_jobs;
CREATE TRIGGER jobdash_count_failed_update
    AFTER UPDATE ON procrastinate_jobs
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobdash_count_failed();

-- step: create trigger jobdash_count_failed_delete
DROP TRIGGER IF EXISTS jobdash_count_failed_delete ON procrastinate_jobs;
CREATE TRIGGER jobdash_count_failed_delete
    AFTER DELETE ON procrastinate_jobs
    REFERENCING OLD TABLE AS old_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobdash_count_failed();

-- step: create trigger jobdash_count_failed_truncate
DROP TRIGGER IF EXISTS jobdash_count_failed_truncate ON procrastinate_jobs;
CREATE TRIGGER jobdash_count_failed_truncate
    AFTER TRUNCATE ON procrastinate_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobdash_forget_failed_counts();

-- step: build index jobdash_jobs_scheduled_idx
-- One-time scheduled jobs in run order (scheduler timeline).
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobdash_jobs_scheduled_idx
    ON procrastinate_jobs (scheduled_at, id)
    WHERE status = 'todo' AND scheduled_at IS NOT NULL;

-- step: count the failed jobs there are (ledger backfill)
-- Runs once all four ledger triggers exist. A transaction that wrote procrastinate_jobs before
-- the last of them was created had to end before that trigger could be (CREATE TRIGGER waits
-- for every writer), so from here on each change appends its delta; the recount replaces the
-- deltas its snapshot sees with the counts that same snapshot sees.
SELECT jobdash_recount_failed();

-- step: create function jobdash_backfill_finishes
-- One batch of the finishes backfill: the latest finish of each of the next `batch_size` jobs
-- that failed or finished in the last 7 days (the longest useful window). `progress` is
-- {last job id done, last job id to do}: NULL on the first call, which stops at the newest job
-- then (any later job finishes with the trigger in place); returns the next progress, NULL
-- when done. A row the trigger wrote is at least as recent as what the batch read, so a
-- conflict keeps it. Each batch is its own short transaction: a worker whose finish meets a
-- row of the running batch waits for that batch only.
CREATE OR REPLACE FUNCTION jobdash_backfill_finishes(progress bigint[], batch_size integer)
    RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    _after bigint := coalesce(progress[1], 0);  -- job ids start at 1
    _stop bigint := progress[2];
    _last bigint;
BEGIN
    IF _stop IS NULL THEN
        SELECT max(id) INTO _stop FROM procrastinate_jobs;
    END IF;
    SELECT max(id) INTO _last FROM (
        SELECT id FROM procrastinate_jobs WHERE id > _after AND id <= _stop
        ORDER BY id LIMIT batch_size
    ) batch;
    IF _last IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO jobdash_job_finishes (job_id, finished_at, outcome, duration_ms)
    SELECT DISTINCT ON (f.job_id) f.job_id, f.at, f.type,
           extract(epoch FROM f.at - (
               SELECT max(s.at) FROM procrastinate_events s
               WHERE s.job_id = f.job_id AND s.type = 'started' AND s.at <= f.at
           )) * 1000
    FROM procrastinate_events f
    JOIN procrastinate_jobs j ON j.id = f.job_id
    WHERE f.job_id > _after AND f.job_id <= _last
      AND f.type IN ('succeeded', 'failed')
      AND (j.status = 'failed' OR f.at > now() - interval '7 days')
    ORDER BY f.job_id, f.at DESC, f.id DESC
    ON CONFLICT (job_id) DO NOTHING;
    RETURN ARRAY[_last, _stop];
END;
$$;

-- step (batched): record the finishes there are (finishes backfill)
SELECT jobdash_backfill_finishes(%(cursor)s, %(batch_size)s);

-- step: forget finishes of jobs deleted while the backfill ran
-- A job deleted while its batch ran keeps a row when its delete's trigger looked before the
-- batch committed. Such a delete is a transaction writing procrastinate_jobs: wait for every
-- one running now, then remove the rows of jobs that are gone.
DO $$
DECLARE
    _writers text[] := ARRAY(
        SELECT DISTINCT l.virtualtransaction FROM pg_locks l
        WHERE l.relation = 'procrastinate_jobs'::regclass AND l.mode = 'RowExclusiveLock'
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.pid <> pg_backend_pid()
    );
BEGIN
    WHILE EXISTS (SELECT 1 FROM pg_locks l WHERE l.virtualtransaction = ANY (_writers)) LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
    DELETE FROM jobdash_job_finishes f
    WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.id = f.job_id);
END;
$$;
