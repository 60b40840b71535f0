-- The IANA time zone a charger stands in (e.g. Europe/Berlin): its receipts give times in
-- it. NULL: the operator's (the [operator] time_zone setting).
ALTER TABLE chargers ADD COLUMN time_zone TEXT;
