-- Refunds of captured payments, full or partial; never more than captured in total
-- (the reservation state machine checks that before a refund is asked of Stripe).
CREATE TABLE refunds (
    id               TEXT COLLATE "C" PRIMARY KEY,
    reservation_id   TEXT COLLATE "C" NOT NULL REFERENCES reservations (id),
    amount           BIGINT NOT NULL CHECK (amount > 0),
    reason           TEXT COLLATE "C" NOT NULL,
    status           TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    stripe_refund_id TEXT COLLATE "C",
    failure          TEXT COLLATE "C",
    requested_by     TEXT COLLATE "C" NOT NULL,
    created_at       TEXT COLLATE "C" NOT NULL,
    updated_at       TEXT COLLATE "C" NOT NULL
);
CREATE INDEX refunds_by_reservation ON refunds (reservation_id, created_at);
