-- A database as release 0.1 (csms schema version 1) left it, with data.
-- Frozen: later releases must upgrade it without losing anything.
BEGIN TRANSACTION;
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
INSERT INTO "chargers" VALUES('CP-OLD','Car park level 2',NULL,'Accepted','Acme','Volt-22',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,NULL,NULL,'2026-01-01T00:00:00.000Z');
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
INSERT INTO "connectors" VALUES('CP-OLD',1,'Available','NoError',NULL,NULL,NULL,'2026-01-01T00:00:00.000Z');
CREATE TABLE data_transfers (
    id          INTEGER PRIMARY KEY,
    charger_id  TEXT NOT NULL,
    vendor_id   TEXT NOT NULL,
    message_id  TEXT,
    data        TEXT,
    status      TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE id_tags (
    id_tag      TEXT PRIMARY KEY,
    parent_id_tag TEXT,
    expiry_date TEXT,
    blocked     INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
INSERT INTO "id_tags" VALUES('TAG-OLD',NULL,NULL,0,'2026-01-01T00:00:00.000Z');
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
INSERT INTO "meter_values" VALUES(1,'CP-OLD',1,7,'2026-01-01T10:30:00.000Z','Energy.Active.Import.Register',NULL,'Wh','Sample.Periodic','Outlet','Raw','2600',2600.0,'2026-01-01T10:30:01.000Z');
CREATE TABLE schema_migrations ( component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (component, version));
INSERT INTO "schema_migrations" VALUES('csms',1,'initial','2026-11-23T13:14:36.777349+00:00');
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
INSERT INTO "transactions" VALUES(7,'CP-OLD',1,'TAG-OLD','Accepted',NULL,100,'2026-01-01T10:00:00.000Z',5100,NULL,NULL,5100,'2026-01-01T11:00:00.000Z','Local',NULL,'2026-01-01T10:00:00.000Z','2026-01-01T11:00:00.000Z');
CREATE INDEX status_history_by_connector ON status_history (charger_id, connector_id, id);
CREATE INDEX transactions_open ON transactions (charger_id, connector_id) WHERE stopped_at IS NULL;
CREATE INDEX transactions_by_tag ON transactions (id_tag) WHERE stopped_at IS NULL;
CREATE INDEX meter_values_by_transaction ON meter_values (transaction_id, timestamp);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('transactions',7);
COMMIT;
