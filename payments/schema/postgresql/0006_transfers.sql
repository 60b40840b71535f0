-- Money moved to (and back from) site owners' Stripe connected accounts: one row per
-- movement, a transfer of the owner's share or a reversal for a refund, written in the
-- same transaction as the event that reports it (payments.transfers).
CREATE TABLE transfers (
    id             TEXT COLLATE "C" PRIMARY KEY,  -- the movement's idempotency key: transfer:/reversal:
    reservation_id TEXT COLLATE "C" NOT NULL REFERENCES reservations (id),
    owner_id       TEXT COLLATE "C" NOT NULL,
    kind           TEXT COLLATE "C" NOT NULL CHECK (kind IN ('transfer', 'reversal')),
    amount         BIGINT NOT NULL CHECK (amount > 0),
    currency       TEXT COLLATE "C" NOT NULL,
    status         TEXT COLLATE "C" NOT NULL CHECK (status IN ('succeeded', 'failed')),
    stripe_id      TEXT COLLATE "C" UNIQUE,  -- tr_ or trr_; NULL for a movement Stripe refused
    failure        TEXT COLLATE "C",
    created_at     TEXT COLLATE "C" NOT NULL,
    updated_at     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX transfers_by_reservation ON transfers (reservation_id, created_at);
CREATE INDEX transfers_by_owner ON transfers (owner_id, created_at);

-- Who a session's owner share belongs to, for statements (NULL: no owner), and where the
-- share stands (payments.transfer_messages: accrued, transferring, transferred, refused,
-- nothing), so that the shares waiting for an owner are found without reading every payment.
ALTER TABLE reservations ADD COLUMN owner_id TEXT COLLATE "C";
ALTER TABLE reservations ADD COLUMN transfer_status TEXT COLLATE "C";
CREATE INDEX reservations_by_owner ON reservations (owner_id, created_at);
CREATE INDEX reservations_owed ON reservations (owner_id, transfer_status)
    WHERE transfer_status IN ('accrued', 'refused');
