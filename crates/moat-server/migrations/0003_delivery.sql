-- Alert delivery (H-delivery): one row per (rule, subject, target). The row is written in the transaction
-- that marks its outbox event done, so an event is matched against the rules once and its alerts survive a
-- crash; `state` moves pending -> sending (leased) -> delivered, or back to pending with `next_ms` pushed by
-- exponential backoff after a failed attempt, or to failed after the last attempt. `last_error` says what
-- the receiver answered. UNIQUE (dedupe_key, target) sends an alert once per rule and subject.

CREATE TABLE alert_delivery (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    target TEXT NOT NULL,
    outbox_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    alert TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_ms BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until_ms BIGINT,
    last_error TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    delivered_ms BIGINT,
    UNIQUE (dedupe_key, target)
);
CREATE INDEX alert_delivery_due ON alert_delivery(state, next_ms);
CREATE INDEX alert_delivery_subject ON alert_delivery(subject);
