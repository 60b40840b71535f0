-- What OCPP 1.6 does not report of a connector and the operator enters at registration:
-- JSON by connector id, e.g. {"1": {"plugType": "Type2", "maxPowerKw": 22}}. NULL: none.
-- A column of the charger's own row, so that it goes when the charger is deleted.
ALTER TABLE chargers ADD COLUMN connector_details TEXT;
