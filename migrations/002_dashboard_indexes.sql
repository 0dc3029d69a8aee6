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
CREATE INDEX jobdash_job_finishes_failed_idx ON jobdash_job_finishes (finished_at DESC, job_id)
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

-- Failed counts (total and per queue) from an index-only scan of the failed jobs alone.
CREATE INDEX jobdash_jobs_failed_queue_idx ON procrastinate_jobs (queue_name)
    WHERE status = 'failed';

-- One-time scheduled jobs in run order (scheduler timeline).
CREATE INDEX jobdash_jobs_scheduled_idx ON procrastinate_jobs (scheduled_at, id)
    WHERE status = 'todo' AND scheduled_at IS NOT NULL;
