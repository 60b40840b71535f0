-- OCPP 1.6 Security Whitepaper profiles: 0 no authentication, 1 HTTP Basic auth,
-- 2 HTTP Basic auth over TLS. The password is kept only as a salted scrypt hash
-- (csms.ocpp16.auth), and a charger has one exactly when its profile is 1 or 2.
ALTER TABLE chargers ADD COLUMN password_hash TEXT COLLATE "C";
ALTER TABLE chargers ADD COLUMN security_profile INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chargers ADD CONSTRAINT chargers_security_profile
    CHECK (security_profile IN (0, 1, 2) AND (security_profile = 0) = (password_hash IS NULL));
