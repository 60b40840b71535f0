-- Refunds of captured payments, full or partial; never more than captured in total
-- (the reservation state machine checks that before a refund is asked of Stripe).
CREATE TABLE refunds (
    id               TEXT PRIMARY KEY,
    reservation_id   TEXT NOT NULL REFERENCES reservations (id),
    amount           INTEGER NOT NULL CHECK (amount > 0),
    reason           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    stripe_refund_id TEXT,
    failure          TEXT,
    requested_by     TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX refunds_by_reservation ON refunds (reservation_id, created_at);
