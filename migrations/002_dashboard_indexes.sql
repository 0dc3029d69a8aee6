-- What keeps the dashboard's loaders bounded by live work, not by history.
-- Procrastinate has no index on status, task_name, events.type or events.at.

-- One row per finished job: its latest `succeeded`/`failed` event and how long that run took
-- (finish minus the latest `started` before it). Pairing each finish with its start at read
-- time costs ~150 ms per 60,000 finishes; here the pairing is paid once, by a trigger, when
-- the finish event is written. A job that finishes again (after a manual retry) keeps only its
-- latest finish, so counts are counts of jobs. Rows go away with their job.
CREATE TABLE jobdash_job_finishes (
    job_id bigint PRIMARY KEY,
    finished_at timestamptz NOT NULL,
    outcome procrastinate_job_event_type NOT NULL,
    duration_ms double precision
);
-- Window statistics (last hour by default) as one index-only range scan.
CREATE INDEX jobdash_job_finishes_at_idx ON jobdash_job_finishes (finished_at)
    INCLUDE (outcome, duration_ms);
-- Newest failures first, for the failed jobs panel.
CREATE INDEX jobdash_job_finishes_failed_idx ON jobdash_job_finishes (finished_at DESC, job_id DESC)
    WHERE outcome = 'failed';

CREATE FUNCTION jobdash_record_finish() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER jobdash_record_finish
    AFTER INSERT ON procrastinate_events
    FOR EACH ROW WHEN (NEW.type IN ('succeeded', 'failed'))
    EXECUTE FUNCTION jobdash_record_finish();

CREATE FUNCTION jobdash_forget_finishes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM jobdash_job_finishes f USING deleted_jobs d WHERE f.job_id = d.id;
    RETURN NULL;
END;
$$;

-- Statement-level: one set-based delete however many jobs a prune removes.
CREATE TRIGGER jobdash_forget_finishes
    AFTER DELETE ON procrastinate_jobs
    REFERENCING OLD TABLE AS deleted_jobs
    FOR EACH STATEMENT
    EXECUTE FUNCTION jobdash_forget_finishes();

-- Existing data: every failed job, and finishes of the last 7 days (the longest useful window).
INSERT INTO jobdash_job_finishes (job_id, finished_at, outcome, duration_ms)
SELECT DISTINCT ON (f.job_id) f.job_id, f.at, f.type,
       extract(epoch FROM f.at - (
           SELECT max(s.at) FROM procrastinate_events s
           WHERE s.job_id = f.job_id AND s.type = 'started' AND s.at <= f.at
       )) * 1000
FROM procrastinate_events f
JOIN procrastinate_jobs j ON j.id = f.job_id
WHERE f.type IN ('succeeded', 'failed')
  AND (j.status = 'failed' OR f.at > now() - interval '7 days')
ORDER BY f.job_id, f.at DESC, f.id DESC;

-- Ready / scheduled / doing counts per queue and each queue's oldest ready job: only the
-- open jobs, a small set that does not grow with history.
CREATE INDEX jobdash_jobs_open_idx ON procrastinate_jobs (queue_name, status, scheduled_at, id)
    WHERE status IN ('todo', 'doing');

-- Exact failed counts (total and per queue) that do not grow with history: a ledger of
-- (queue, +/-n) rows appended by statement-level triggers on procrastinate_jobs for moves into
-- and out of `failed` only. Appending (never updating a counter row) means no hot row and no
-- lock between workers; a bulk statement appends one row per queue it touched. Reading sums
-- the ledger, which compaction keeps to about one row per queue (plus what came since).
CREATE TABLE jobdash_failed_counts (
    -- Only to pace compaction from the trigger (every COMPACT_EVERY-th row); no index needed.
    id bigint GENERATED ALWAYS AS IDENTITY,
    queue_name text NOT NULL,
    delta bigint NOT NULL
);

-- Collapse the ledger into one row per queue. One compactor at a time (others skip: the next
-- call does it). Under READ COMMITTED the DELETE removes only committed rows, so deltas of
-- transactions still running stay and are counted once when they commit. Returns the number
-- of rows removed.
CREATE FUNCTION jobdash_compact_failed_counts() RETURNS bigint LANGUAGE plpgsql AS $$
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
CREATE FUNCTION jobdash_recount_failed() RETURNS bigint LANGUAGE plpgsql AS $$
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

CREATE FUNCTION jobdash_count_failed() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- Transition tables cannot go with a column list (UPDATE OF status), hence plain UPDATE.
CREATE TRIGGER jobdash_count_failed_insert
    AFTER INSERT ON procrastinate_jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobdash_count_failed();
CREATE TRIGGER jobdash_count_failed_update
    AFTER UPDATE ON procrastinate_jobs
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobdash_count_failed();
CREATE TRIGGER jobdash_count_failed_delete
    AFTER DELETE ON procrastinate_jobs
    REFERENCING OLD TABLE AS old_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobdash_count_failed();

CREATE FUNCTION jobdash_forget_failed_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM jobdash_failed_counts;
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobdash_count_failed_truncate
    AFTER TRUNCATE ON procrastinate_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobdash_forget_failed_counts();

-- Existing data. Creating the triggers locked procrastinate_jobs against writes until this
-- migration commits, so the count and the triggers agree.
SELECT jobdash_recount_failed();

-- One-time scheduled jobs in run order (scheduler timeline).
CREATE INDEX jobdash_jobs_scheduled_idx ON procrastinate_jobs (scheduled_at, id)
    WHERE status = 'todo' AND scheduled_at IS NOT NULL;
