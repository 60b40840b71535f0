-- The payments side: tariffs, reservations (one paid charging session each), the effect
-- outbox, Stripe webhook events and the money audit log.
-- Money is integer minor units; times are ISO 8601 UTC text.

CREATE TABLE tariffs (
    id         TEXT PRIMARY KEY,
    settings   TEXT NOT NULL,  -- JSON of payments.pricing.Tariff
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Which tariff applies where: connector 0 means every connector of the charger.
CREATE TABLE tariff_assignments (
    charger_id   TEXT NOT NULL,
    connector_id INTEGER NOT NULL DEFAULT 0,
    tariff_id    TEXT NOT NULL REFERENCES tariffs (id),
    PRIMARY KEY (charger_id, connector_id)
);

CREATE TABLE reservations (
    id                  TEXT PRIMARY KEY,
    charger_id          TEXT NOT NULL,
    connector_id        INTEGER NOT NULL,
    id_tag              TEXT NOT NULL UNIQUE,
    token               TEXT NOT NULL UNIQUE,  -- the driver's unguessable session link
    state               TEXT NOT NULL,
    hold                TEXT NOT NULL,
    currency            TEXT NOT NULL,
    hold_amount         INTEGER NOT NULL,
    captured_amount     INTEGER NOT NULL DEFAULT 0,
    energy_wh           INTEGER NOT NULL DEFAULT 0,
    transaction_id      INTEGER,
    checkout_session_id TEXT UNIQUE,
    payment_intent_id   TEXT UNIQUE,
    email               TEXT,
    wake_at             TEXT,  -- the next deadline the machine must look at
    data                TEXT NOT NULL,  -- JSON: the whole reservation (tariff snapshot included)
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
-- One active reservation per connector, whatever the application does.
CREATE UNIQUE INDEX one_active_reservation_per_connector ON reservations (charger_id, connector_id)
    WHERE state IN ('PendingPayment', 'Authorised', 'AwaitingPlug', 'StartRequested', 'Charging',
                    'Stopping', 'WaitingForDisconnect', 'Settling');
CREATE INDEX reservations_by_transaction ON reservations (transaction_id);
CREATE INDEX reservations_waking ON reservations (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX reservations_by_state ON reservations (state, created_at);

-- Every state change, for the operator's history of a payment.
CREATE TABLE reservation_history (
    id             INTEGER PRIMARY KEY,
    reservation_id TEXT NOT NULL REFERENCES reservations (id),
    event          TEXT NOT NULL,
    from_state     TEXT NOT NULL,
    to_state       TEXT NOT NULL,
    hold           TEXT NOT NULL,
    at             TEXT NOT NULL
);
CREATE INDEX reservation_history_by_reservation ON reservation_history (reservation_id, id);

-- The outbox: effects decided with a transition, carried out by the runner, at least once.
CREATE TABLE effects (
    id              INTEGER PRIMARY KEY,
    reservation_id  TEXT NOT NULL REFERENCES reservations (id),
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,  -- JSON
    idempotency_key TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    result          TEXT,
    created_at      TEXT NOT NULL,
    done_at         TEXT
);
CREATE INDEX effects_due ON effects (next_attempt_at) WHERE status = 'pending';
CREATE INDEX effects_by_reservation ON effects (reservation_id, id);

-- Stripe events seen, so that a redelivered event changes nothing.
CREATE TABLE webhook_events (
    id             TEXT PRIMARY KEY,
    type           TEXT NOT NULL,
    reservation_id TEXT,
    outcome        TEXT NOT NULL,
    received_at    TEXT NOT NULL
);

-- Append-only record of every money movement and operator action.
CREATE TABLE money_audit (
    id             INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,  -- system, driver, operator, stripe
    action         TEXT NOT NULL,
    reservation_id TEXT,
    amount         INTEGER,
    currency       TEXT,
    stripe_id      TEXT,
    detail         TEXT
);
CREATE TRIGGER money_audit_is_append_only_update BEFORE UPDATE ON money_audit
BEGIN SELECT RAISE(ABORT, 'money_audit is append-only'); END;
CREATE TRIGGER money_audit_is_append_only_delete BEFORE DELETE ON money_audit
BEGIN SELECT RAISE(ABORT, 'money_audit is append-only'); END;
