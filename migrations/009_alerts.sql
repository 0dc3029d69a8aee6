-- Alerts that reach the team: each rule's state (ok / firing since …) and every message sent,
-- written by the alert evaluator (the maintenance task of an instrumented worker, once a
-- minute, one worker at a time) and read by the Alerts page. Our own tables only.

-- step: create jobdash_alert_state
-- One row per rule name: what the last evaluation saw, and when the team was last told.
CREATE TABLE IF NOT EXISTS jobdash_alert_state (
    rule_name text PRIMARY KEY,
    status text NOT NULL CHECK (status IN ('ok', 'firing')),
    since timestamptz NOT NULL DEFAULT now(),
    value double precision,
    summary text NOT NULL DEFAULT '',
    evaluated_at timestamptz NOT NULL DEFAULT now(),
    notified_at timestamptz
);

-- step: create jobdash_alert_deliveries
-- One row per message and channel: firing, reminder, resolved or test, delivered or not, after
-- how many attempts and why not. Kept 30 days (the evaluator prunes).
CREATE TABLE IF NOT EXISTS jobdash_alert_deliveries (
    id bigserial PRIMARY KEY,
    rule_name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('firing', 'reminder', 'resolved', 'test')),
    channel text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL,
    delivered boolean NOT NULL,
    error text,
    message text NOT NULL
);
CREATE INDEX IF NOT EXISTS jobdash_alert_deliveries_rule_idx
    ON jobdash_alert_deliveries (rule_name, sent_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobdash_alert_deliveries_sent_idx
    ON jobdash_alert_deliveries (sent_at DESC, id DESC);
