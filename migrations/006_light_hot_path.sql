-- What Jobdash adds to Procrastinate's hot path, as light as measured: on a job's way through
-- defer → fetch → finish, PostgreSQL evaluates a few trigger WHEN clauses (in C, no plpgsql)
-- and no index of ours is written (each one measured +7 % or more on batch defers). Counts and
-- statistics come from where they are cheap to read: failed counts from a ledger written only
-- when a job moves into or out of `failed`, the last hour's statistics from the history rollup
-- (see app/read/dashboard.py), open jobs from Procrastinate's own index of them, up to a cap.
-- Replaces what 002 created on earlier installs (each removal is idempotent).

-- step: stop recording finishes by trigger
DROP TRIGGER IF EXISTS jobdash_record_finish ON procrastinate_events;

-- step: stop forgetting finishes by trigger
DROP TRIGGER IF EXISTS jobdash_forget_finishes ON procrastinate_jobs;

-- step: drop the finishes table and its functions
DROP FUNCTION IF EXISTS jobdash_record_finish();
DROP FUNCTION IF EXISTS jobdash_forget_finishes();
DROP FUNCTION IF EXISTS jobdash_backfill_finishes(bigint[], integer);
DROP TABLE IF EXISTS jobdash_job_finishes;

-- step: create jobdash_failed_counts, per queue and task
-- Exact failed counts that do not grow with history: (queue, task, +/-n) rows appended when a
-- job moves into or out of `failed`. Appending (never updating a counter row) means no hot row
-- and no lock between workers. Reading sums the ledger, which compaction keeps to about one row
-- per (queue, task) plus what came since.
CREATE TABLE IF NOT EXISTS jobdash_failed_counts (
    -- Only to pace compaction from the trigger (every 1000th row); no index needed.
    id bigint GENERATED ALWAYS AS IDENTITY,
    queue_name text NOT NULL,
    delta bigint NOT NULL
);
ALTER TABLE jobdash_failed_counts ADD COLUMN IF NOT EXISTS task_name text NOT NULL DEFAULT '';

-- step: create the failed-count functions
-- Collapse the ledger into one row per (queue, task). One compactor at a time (others skip:
-- the next call does it). Under READ COMMITTED the DELETE removes only committed rows, so
-- deltas of transactions still running stay and are counted once when they commit.
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
        DELETE FROM jobdash_failed_counts RETURNING queue_name, task_name, delta
    ), kept AS (
        INSERT INTO jobdash_failed_counts (queue_name, task_name, delta)
        SELECT queue_name, task_name, sum(delta) FROM gone
        GROUP BY queue_name, task_name HAVING sum(delta) <> 0
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
        INSERT INTO jobdash_failed_counts (queue_name, task_name, delta)
        SELECT queue_name, task_name, count(*) FROM procrastinate_jobs WHERE status = 'failed'
        GROUP BY queue_name, task_name
        RETURNING delta
    )
    SELECT coalesce(sum(delta), 0) INTO _total FROM counted;
    RETURN _total;
END;
$$;

-- One job moved into or out of `failed` (or a failed job changed queue or task): the triggers'
-- WHEN clauses let only those rows through, so no other change runs this.
CREATE OR REPLACE FUNCTION jobdash_count_failed_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    _id bigint;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'failed' THEN
        INSERT INTO jobdash_failed_counts (queue_name, task_name, delta)
        VALUES (OLD.queue_name, OLD.task_name, -1) RETURNING id INTO _id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status = 'failed' THEN
        INSERT INTO jobdash_failed_counts (queue_name, task_name, delta)
        VALUES (NEW.queue_name, NEW.task_name, 1) RETURNING id INTO _id;
    END IF;
    -- Every 1000th ledger row, compact here too: the ledger stays small even when no
    -- instrumented worker runs the maintenance task.
    IF _id % 1000 = 0 THEN
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

-- step: count moves into and out of failed, row by row, filtered by WHEN clauses
-- Row-level with WHEN instead of statement-level with transition tables: the WHEN clause is
-- evaluated in C for each changed row and only a move into or out of `failed` runs plpgsql;
-- transition tables cost every UPDATE of procrastinate_jobs (each fetch, each finish) a copy
-- of its rows and a plpgsql call. One step: the old triggers go and the new ones come in one
-- transaction, so no change is counted twice or missed.
DROP TRIGGER IF EXISTS jobdash_count_failed_insert ON procrastinate_jobs;
DROP TRIGGER IF EXISTS jobdash_count_failed_update ON procrastinate_jobs;
DROP TRIGGER IF EXISTS jobdash_count_failed_delete ON procrastinate_jobs;
DROP TRIGGER IF EXISTS jobdash_count_failed_truncate ON procrastinate_jobs;
CREATE TRIGGER jobdash_count_failed_insert
    AFTER INSERT ON procrastinate_jobs
    FOR EACH ROW WHEN (NEW.status = 'failed')
    EXECUTE FUNCTION jobdash_count_failed_row();
CREATE TRIGGER jobdash_count_failed_update
    AFTER UPDATE OF status, queue_name, task_name ON procrastinate_jobs
    FOR EACH ROW WHEN (
        (OLD.status = 'failed' OR NEW.status = 'failed')
        AND (OLD.status IS DISTINCT FROM NEW.status
             OR OLD.queue_name IS DISTINCT FROM NEW.queue_name
             OR OLD.task_name IS DISTINCT FROM NEW.task_name)
    )
    EXECUTE FUNCTION jobdash_count_failed_row();
CREATE TRIGGER jobdash_count_failed_delete
    AFTER DELETE ON procrastinate_jobs
    FOR EACH ROW WHEN (OLD.status = 'failed')
    EXECUTE FUNCTION jobdash_count_failed_row();
CREATE TRIGGER jobdash_count_failed_truncate
    AFTER TRUNCATE ON procrastinate_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobdash_forget_failed_counts();

-- step: drop the statement-level counting function
DROP FUNCTION IF EXISTS jobdash_count_failed();

-- step: count the failed jobs there are (ledger backfill)
-- After the triggers exist: a transaction that wrote procrastinate_jobs before them had to end
-- before they could be created, so from here on each change appends its delta; the recount
-- replaces the deltas its snapshot sees with the counts that same snapshot sees.
SELECT jobdash_recount_failed();

-- step: drop index jobdash_jobs_open_idx
DROP INDEX CONCURRENTLY IF EXISTS jobdash_jobs_open_idx;

-- step: drop index jobdash_jobs_scheduled_idx
DROP INDEX CONCURRENTLY IF EXISTS jobdash_jobs_scheduled_idx;

-- step: keep the events of a job deleted while open
-- A job deleted while `doing` is Procrastinate finishing it with delete_jobs: the trigger
-- records its outcome. A finished job deleted (retention prunes) needs nothing: its minutes
-- were rolled up long ago, and the dashboard's own delete keeps the events it archives.
DROP TRIGGER IF EXISTS jobdash_keep_recent_events_of_deleted_job ON procrastinate_jobs;
CREATE TRIGGER jobdash_keep_recent_events_of_deleted_job
    BEFORE DELETE ON procrastinate_jobs
    FOR EACH ROW WHEN (OLD.status IN ('todo', 'doing'))
    EXECUTE FUNCTION jobdash_keep_recent_events_of_deleted_job();

-- step: create the ready-since functions
-- When a ready job became runnable: the later of its scheduled_at and its latest deferral
-- (deferred, retried, deferred_for_retry). The one definition of latency: the live panel, the
-- snapshot, the CLI and the history rollup all read it through jobdash_open_jobs.
CREATE OR REPLACE FUNCTION jobdash_ready_since(_job_id bigint, _scheduled_at timestamptz)
    RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT greatest(
        _scheduled_at,
        (SELECT max(e.at) FROM procrastinate_events e
          WHERE e.job_id = _job_id
            AND e.type IN ('deferred', 'retried', 'deferred_for_retry'))
    )
$$;

-- step: create the open-jobs functions
-- Open jobs are read through Procrastinate's own index of them (procrastinate_jobs_id_lock_idx_v1,
-- todo and doing in id order) up to a cap: the oldest `_cap` open jobs. Below the cap every
-- count is exact; past it they are lower bounds (`capped`), while the longest wait stays right:
-- the lowest ids are the earliest deferrals. The live panel reads a small cap on each refresh,
-- the rollup's minute sample a large one, so neither costs more with a bigger backlog.
CREATE OR REPLACE FUNCTION jobdash_open_prefix(_cap integer)
    RETURNS TABLE (id bigint, queue_name text, task_name text,
                   status procrastinate_job_status, scheduled_at timestamptz, worker_id bigint,
                   abort_requested boolean)
    LANGUAGE sql STABLE AS $$
    SELECT j.id, j.queue_name, j.task_name, j.status, j.scheduled_at, j.worker_id,
           j.abort_requested
      FROM procrastinate_jobs j
     WHERE j.status IN ('todo', 'doing')
     ORDER BY j.id LIMIT _cap
$$;

-- Per queue among the oldest `_cap` open jobs: ready (runnable now), scheduled (for later),
-- doing, orphaned (doing, its worker row gone: stalled for certain), since when its
-- longest-waiting ready job has been waiting. The lowest-id unscheduled ready job (never
-- retried: a retry sets scheduled_at, so ids follow deferral) and the first `_probes` due
-- scheduled jobs (a job deferred after its scheduled time waited only since its deferral)
-- are the candidates for the longest wait.
CREATE OR REPLACE FUNCTION jobdash_open_jobs(_cap integer, _probes integer DEFAULT 20)
    RETURNS TABLE (queue_name text, ready bigint, scheduled bigint, doing bigint,
                   orphaned bigint, oldest_ready timestamptz, capped boolean)
    LANGUAGE sql STABLE AS $$
    -- One more than the cap: that it was found says the counts stopped (they stay true lower
    -- bounds with it counted).
    WITH seen AS MATERIALIZED (
        SELECT * FROM jobdash_open_prefix(_cap + 1)
    ), candidates AS (
        SELECT s.queue_name, min(s.id) AS id, NULL::timestamptz AS scheduled_at
          FROM seen s WHERE s.status = 'todo' AND s.scheduled_at IS NULL
         GROUP BY s.queue_name
        UNION ALL
        SELECT d.queue_name, d.id, d.scheduled_at FROM (
            SELECT s.queue_name, s.id, s.scheduled_at,
                   row_number() OVER (PARTITION BY s.queue_name
                                      ORDER BY s.scheduled_at, s.id) AS n
              FROM seen s WHERE s.status = 'todo' AND s.scheduled_at <= now()) d
         WHERE d.n <= _probes
    ), oldest AS (
        SELECT c.queue_name, min(jobdash_ready_since(c.id, c.scheduled_at)) AS since
          FROM candidates c GROUP BY c.queue_name
    ), counts AS (
        SELECT s.queue_name,
               count(*) FILTER (WHERE s.status = 'todo'
                                  AND (s.scheduled_at IS NULL OR s.scheduled_at <= now()))
                   AS ready,
               count(*) FILTER (WHERE s.status = 'todo' AND s.scheduled_at > now())
                   AS scheduled,
               count(*) FILTER (WHERE s.status = 'doing') AS doing,
               count(*) FILTER (WHERE s.status = 'doing' AND s.worker_id IS NULL) AS orphaned
          FROM seen s GROUP BY s.queue_name
    )
    SELECT c.queue_name, c.ready, c.scheduled, c.doing, c.orphaned, o.since,
           (SELECT count(*) > _cap FROM seen)
      FROM counts c LEFT JOIN oldest o ON o.queue_name = c.queue_name
$$;

-- Every queue there is: one probe of Procrastinate's queue_name index per queue (a loose index
-- scan), however many jobs each holds.
CREATE OR REPLACE FUNCTION jobdash_queue_names() RETURNS SETOF text LANGUAGE sql STABLE AS $$
    WITH RECURSIVE names(name) AS (
        (SELECT queue_name FROM procrastinate_jobs ORDER BY queue_name LIMIT 1)
        UNION ALL
        SELECT (SELECT j.queue_name FROM procrastinate_jobs j
                 WHERE j.queue_name > n.name ORDER BY j.queue_name LIMIT 1)
          FROM names n WHERE n.name IS NOT NULL
    )
    SELECT name FROM names WHERE name IS NOT NULL
$$;

-- step: say whether a depth sample hit its cap
ALTER TABLE jobdash_queue_depth_minute ADD COLUMN IF NOT EXISTS capped boolean NOT NULL DEFAULT false;

-- step: create jobdash_event_id_before
-- The id of the last event before `_at`, by bisection over the primary key (about 25 index
-- probes however many events there are): where to start reading the events of a recent window
-- when no rollup mark gives it. An event's `at` is its transaction's start, so ids follow time
-- only roughly: callers ask for a few minutes earlier than they need.
CREATE OR REPLACE FUNCTION jobdash_event_id_before(_at timestamptz)
    RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    _low bigint;
    _high bigint;
    _middle bigint;
    _middle_at timestamptz;
BEGIN
    SELECT min(id) - 1, max(id) INTO _low, _high FROM procrastinate_events;
    IF _high IS NULL THEN
        RETURN 0;
    END IF;
    -- Invariant: the answer lies in [_low, _high]; events up to _low are before `_at`.
    WHILE _low < _high LOOP
        _middle := _low + (_high - _low + 1) / 2;
        SELECT at INTO _middle_at FROM procrastinate_events
         WHERE id >= _middle ORDER BY id LIMIT 1;
        IF _middle_at < _at THEN
            _low := _middle;
        ELSE
            _high := _middle - 1;
        END IF;
    END LOOP;
    RETURN _low;
END;
$$;
