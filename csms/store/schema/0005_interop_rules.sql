-- When a transaction stopped counting as running for its id tag although no
-- StopTransaction has come for it: its charger booted again, or its connector reported
-- Available, after it started. Such a transaction no longer makes a start of the same tag
-- ConcurrentTx; its StopTransaction, when it comes, is stored as ever.
ALTER TABLE transactions ADD COLUMN lapsed_at TEXT;

-- Charge point ids are CiStrings in OCPP, compared without case: a charger is looked up by
-- its id folded to lower case when the exact id is not registered.
CREATE INDEX chargers_by_folded_id ON chargers (lower(id));
