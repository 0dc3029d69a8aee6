-- What a rollup run leaves for the next one. last_run_at is the end of the window the run made
-- complete (not when its transaction began: a long backfill would look stale). recompute_from
-- is where the next run must start recomputing at the latest: events of transactions still
-- open at the end of a run carry their start time as `at` and may commit later.
-- step: add jobdash_rollup_state.recompute_from
ALTER TABLE jobdash_rollup_state ADD COLUMN IF NOT EXISTS recompute_from timestamptz;
COMMENT ON COLUMN jobdash_rollup_state.last_run_at IS
    'end of the window the last rollup made complete';
COMMENT ON COLUMN jobdash_rollup_state.recompute_from IS
    'the next rollup recomputes from here at the latest (oldest open transaction at the last run)';
