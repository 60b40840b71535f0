-- Owners of sites' chargers, each a Stripe Connect connected account (Express). The flags
-- are Stripe's, as last read from the account (account.updated, or retrieved); ready_at is
-- when the owner first could receive transfers (payments/owners.py says by which flags).
CREATE TABLE owners (
    id                TEXT COLLATE "C" PRIMARY KEY,
    name              TEXT COLLATE "C" NOT NULL,
    email             TEXT COLLATE "C" NOT NULL,
    country           TEXT COLLATE "C" NOT NULL,  -- ISO 3166-1 alpha-2
    stripe_account_id TEXT COLLATE "C" UNIQUE,    -- acct_...; NULL until Stripe has created it
    charges_enabled   INTEGER NOT NULL DEFAULT 0 CHECK (charges_enabled IN (0, 1)),
    payouts_enabled   INTEGER NOT NULL DEFAULT 0 CHECK (payouts_enabled IN (0, 1)),
    details_submitted INTEGER NOT NULL DEFAULT 0 CHECK (details_submitted IN (0, 1)),
    transfers_active  INTEGER NOT NULL DEFAULT 0 CHECK (transfers_active IN (0, 1)),
    flags_as_of       BIGINT NOT NULL DEFAULT 0,   -- Stripe's time (Unix s) of the flags' state
    requirements_due  TEXT COLLATE "C",           -- JSON list of Stripe's currently_due, if known
    ready_at          TEXT COLLATE "C",
    created_at        TEXT COLLATE "C" NOT NULL,
    updated_at        TEXT COLLATE "C" NOT NULL
);

-- Payouts of connected accounts to their banks, as Stripe reports them (payout.* events).
CREATE TABLE payouts (
    id                TEXT COLLATE "C" PRIMARY KEY,  -- po_...
    owner_id          TEXT COLLATE "C",              -- NULL: an account no owner here has
    stripe_account_id TEXT COLLATE "C" NOT NULL,
    amount            BIGINT NOT NULL,
    currency          TEXT COLLATE "C" NOT NULL,
    status            TEXT COLLATE "C" NOT NULL,     -- Stripe's: pending, in_transit, paid, failed, canceled
    arrival_date      TEXT COLLATE "C",
    failure_message   TEXT COLLATE "C",
    created_at        TEXT COLLATE "C" NOT NULL,
    updated_at        TEXT COLLATE "C" NOT NULL
);
CREATE INDEX payouts_by_owner ON payouts (owner_id, created_at);
