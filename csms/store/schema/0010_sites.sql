-- Where chargers stand, as the operator registers it: a name and address, the IANA time
-- zone the driver's receipts (and tariffs by time of day) use, who owns its chargers, how a
-- session's money is split with that owner, and whom drivers ask.
-- `owner_id` names an owner of the payments side (its `owners` table): plain text, no
-- foreign key across the two schemas; the API checks it. `split`: JSON of
-- payments.split.SplitRule; NULL: no split (the operator keeps everything).
CREATE TABLE sites (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    address       TEXT,
    time_zone     TEXT NOT NULL,
    owner_id      TEXT,
    split         TEXT,
    support_email TEXT,
    support_phone TEXT,
    support_url   TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
-- The site a charger belongs to; NULL: none. A site with chargers cannot be deleted.
ALTER TABLE chargers ADD COLUMN site_id TEXT REFERENCES sites (id);
CREATE INDEX chargers_by_site ON chargers (site_id);
