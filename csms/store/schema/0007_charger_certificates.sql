-- OCPP 1.6 security profile 3: TLS with a client certificate from the operator CA whose
-- CN is the charge point id (csms/certs). `certificate_required` puts a charger on it;
-- its password and profile 1 or 2 are kept for when it is taken off it again.
ALTER TABLE chargers ADD COLUMN certificate_required INTEGER NOT NULL DEFAULT 0
    CHECK (certificate_required IN (0, 1));
-- Every certificate issued to a charger (SignCertificate, `csms certs sign`): renewed
-- before not_after. The serial is hex.
CREATE TABLE charger_certificates (
    serial     TEXT PRIMARY KEY,
    charger_id TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after  TEXT NOT NULL,
    issued_at  TEXT NOT NULL,
    pem        TEXT NOT NULL
);
CREATE INDEX charger_certificates_by_charger ON charger_certificates (charger_id, not_after);
