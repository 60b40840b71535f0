-- Operator alerts (payments/alerts.py): a review whose hold stays on the card, a dispute,
-- a capture Stripe refused, an effect stuck in the outbox. One row per subject, so each
-- is raised once; its delivery to the operator's webhook is retried with backoff.
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,  -- needs_review, dispute, capture_failed, outbox_stuck
    subject         TEXT NOT NULL UNIQUE,  -- what it is about, e.g. needs_review:{id}:{since}
    reservation_id  TEXT,
    payload         TEXT NOT NULL,  -- JSON: the body POSTed to alerts.webhook_url
    -- pending: to be delivered; sent: taken (2xx); failed: given up; unsent: no URL was set
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'unsent')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX alerts_due ON alerts (next_attempt_at) WHERE status = 'pending';

-- How far the checks have read the append-only money audit log. Lines written before
-- alerts existed are not alerted on: the mark starts after them.
CREATE TABLE alert_marks (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO alert_marks (name, value) SELECT 'money_audit', COALESCE(MAX(id), 0) FROM money_audit;
