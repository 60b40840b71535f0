-- The OCPP side: chargers, their connectors, id tags, transactions and meter values.
-- Times are ISO 8601 UTC text ("2026-01-31T12:00:00.000Z"), which sorts correctly.
-- Energy is integer Wh, power integer W.

CREATE TABLE chargers (
    id                       TEXT PRIMARY KEY,
    name                     TEXT,
    location                 TEXT,
    registration_status      TEXT NOT NULL DEFAULT 'Accepted'
                             CHECK (registration_status IN ('Accepted', 'Pending', 'Rejected')),
    vendor                   TEXT,
    model                    TEXT,
    serial_number            TEXT,
    charge_box_serial_number TEXT,
    firmware_version         TEXT,
    iccid                    TEXT,
    imsi                     TEXT,
    meter_type               TEXT,
    meter_serial_number      TEXT,
    last_boot_at             TEXT,
    last_seen_at             TEXT,
    online                   INTEGER NOT NULL DEFAULT 0,
    connected_at             TEXT,
    disconnected_at          TEXT,
    diagnostics_status       TEXT,
    diagnostics_status_at    TEXT,
    firmware_status          TEXT,
    firmware_status_at       TEXT,
    created_at               TEXT NOT NULL
);

-- The latest status of each connector; connector 0 is the charger as a whole.
CREATE TABLE connectors (
    charger_id        TEXT NOT NULL REFERENCES chargers (id) ON DELETE CASCADE,
    connector_id      INTEGER NOT NULL CHECK (connector_id >= 0),
    status            TEXT NOT NULL,
    error_code        TEXT NOT NULL,
    info              TEXT,
    vendor_id         TEXT,
    vendor_error_code TEXT,
    status_at         TEXT NOT NULL,
    PRIMARY KEY (charger_id, connector_id)
);

CREATE TABLE status_history (
    id                INTEGER PRIMARY KEY,
    charger_id        TEXT NOT NULL REFERENCES chargers (id) ON DELETE CASCADE,
    connector_id      INTEGER NOT NULL,
    status            TEXT NOT NULL,
    error_code        TEXT NOT NULL,
    info              TEXT,
    vendor_id         TEXT,
    vendor_error_code TEXT,
    timestamp         TEXT,
    received_at       TEXT NOT NULL
);
CREATE INDEX status_history_by_connector ON status_history (charger_id, connector_id, id);

CREATE TABLE id_tags (
    id_tag      TEXT PRIMARY KEY,
    parent_id_tag TEXT,
    expiry_date TEXT,
    blocked     INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

CREATE TABLE transactions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    charger_id        TEXT NOT NULL REFERENCES chargers (id),
    connector_id      INTEGER NOT NULL,
    id_tag            TEXT NOT NULL,
    id_tag_status     TEXT NOT NULL,
    reservation_id    INTEGER,
    meter_start_wh    INTEGER NOT NULL,
    started_at        TEXT NOT NULL,
    energy_wh         INTEGER,
    power_w           INTEGER,
    metered_at        TEXT,
    meter_stop_wh     INTEGER,
    stopped_at        TEXT,
    stop_reason       TEXT,
    stop_id_tag       TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    -- A charger that resends a StartTransaction after a lost reply gets the same id back.
    UNIQUE (charger_id, connector_id, id_tag, started_at)
);
CREATE INDEX transactions_open ON transactions (charger_id, connector_id) WHERE stopped_at IS NULL;
CREATE INDEX transactions_by_tag ON transactions (id_tag) WHERE stopped_at IS NULL;

-- Every sampled value as the charger sent it, plus the value in Wh / W where it is one.
CREATE TABLE meter_values (
    id             INTEGER PRIMARY KEY,
    charger_id     TEXT NOT NULL,
    connector_id   INTEGER NOT NULL,
    transaction_id INTEGER,
    timestamp      TEXT NOT NULL,
    measurand      TEXT NOT NULL,
    phase          TEXT,
    unit           TEXT,
    context        TEXT,
    location       TEXT,
    format         TEXT,
    value          TEXT NOT NULL,
    normalised     REAL,
    received_at    TEXT NOT NULL
);
CREATE INDEX meter_values_by_transaction ON meter_values (transaction_id, timestamp);

CREATE TABLE data_transfers (
    id          INTEGER PRIMARY KEY,
    charger_id  TEXT NOT NULL,
    vendor_id   TEXT NOT NULL,
    message_id  TEXT,
    data        TEXT,
    status      TEXT NOT NULL,
    received_at TEXT NOT NULL
);
