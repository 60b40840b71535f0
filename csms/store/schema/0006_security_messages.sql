-- The security extension of OCPP 1.6 (csms/ocpp16/security_messages.py).
--
-- SecurityEventNotification: one row per event, as the charger sent it. `critical` is the
-- spec's flag for the event's type; `alert_due` is 1 from the moment a critical event is
-- stored until the operator alert about it is raised (csms/alerting.py), in the same
-- transaction as that alert.
CREATE TABLE security_events (
    id          INTEGER PRIMARY KEY,
    charger_id  TEXT NOT NULL REFERENCES chargers (id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    timestamp   TEXT NOT NULL,  -- when the charger says it happened
    tech_info   TEXT,
    critical    INTEGER NOT NULL CHECK (critical IN (0, 1)),
    alert_due   INTEGER NOT NULL CHECK (alert_due IN (0, 1)),
    received_at TEXT NOT NULL
);
CREATE INDEX security_events_by_charger ON security_events (charger_id, id);
CREATE INDEX security_events_alert_due ON security_events (id) WHERE alert_due = 1;

-- SignedFirmwareStatusNotification and LogStatusNotification: every report, and the
-- latest of each kind on the charger.
CREATE TABLE log_firmware_statuses (
    id          INTEGER PRIMARY KEY,
    charger_id  TEXT NOT NULL REFERENCES chargers (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('firmware', 'log')),
    status      TEXT NOT NULL,
    request_id  INTEGER,
    received_at TEXT NOT NULL
);
CREATE INDEX log_firmware_statuses_by_charger ON log_firmware_statuses (charger_id, id);

ALTER TABLE chargers ADD COLUMN signed_firmware_status TEXT;
ALTER TABLE chargers ADD COLUMN signed_firmware_request_id INTEGER;
ALTER TABLE chargers ADD COLUMN signed_firmware_status_at TEXT;
ALTER TABLE chargers ADD COLUMN log_status TEXT;
ALTER TABLE chargers ADD COLUMN log_request_id INTEGER;
ALTER TABLE chargers ADD COLUMN log_status_at TEXT;
