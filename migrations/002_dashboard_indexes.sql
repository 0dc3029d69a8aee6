-- Superseded by 006_light_hot_path.sql, which builds what the dashboard's reads need with the
-- lightest hot-path cost measured (docs/benchmarks-overhead.md) and removes what this file
-- used to create (a finishes table kept by a trigger on every finish, statement-level ledger
-- triggers, an index of every open job). Kept, as a step that does nothing, so that databases
-- which applied it stay up to date.

-- step: nothing (see 006_light_hot_path.sql)
SELECT 1;
