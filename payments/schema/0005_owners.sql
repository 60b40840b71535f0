-- Owners of sites' chargers, each a Stripe Connect connected account (Express). The flags
-- are Stripe's, as last read from the account (account.updated, or retrieved); ready_at is
-- when the owner first could receive transfers (payments/owners.py says by which flags).
CREATE TABLE owners (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    email             TEXT NOT NULL,
    country           TEXT NOT NULL,  -- ISO 3166-1 alpha-2
    stripe_account_id TEXT UNIQUE,    -- acct_...; NULL until Stripe has created it
    charges_enabled   INTEGER NOT NULL DEFAULT 0 CHECK (charges_enabled IN (0, 1)),
    payouts_enabled   INTEGER NOT NULL DEFAULT 0 CHECK (payouts_enabled IN (0, 1)),
    details_submitted INTEGER NOT NULL DEFAULT 0 CHECK (details_submitted IN (0, 1)),
    transfers_active  INTEGER NOT NULL DEFAULT 0 CHECK (transfers_active IN (0, 1)),
    flags_as_of       INTEGER NOT NULL DEFAULT 0,  -- Stripe's time (Unix s) of the flags' state
    requirements_due  TEXT,           -- JSON list of Stripe's currently_due, if known
    ready_at          TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

-- Payouts of connected accounts to their banks, as Stripe reports them (payout.* events).
CREATE TABLE payouts (
    id                TEXT PRIMARY KEY,  -- po_...
    owner_id          TEXT,              -- NULL: an account no owner here has
    stripe_account_id TEXT NOT NULL,
    amount            INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL,     -- Stripe's: pending, in_transit, paid, failed, canceled
    arrival_date      TEXT,
    failure_message   TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX payouts_by_owner ON payouts (owner_id, created_at);
