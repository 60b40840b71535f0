-- Sites on PostgreSQL: the same table and rules as ../0010_sites.sql.
-- Where chargers stand, as the operator registers it: a name and address, the IANA time
-- zone the driver's receipts (and tariffs by time of day) use, who owns its chargers, how a
-- session's money is split with that owner, and whom drivers ask.
-- `owner_id` names an owner of the payments side (its `owners` table): plain text, no
-- foreign key across the two schemas; the API checks it. `split`: JSON of
-- payments.split.SplitRule; NULL: no split (the operator keeps everything).
CREATE TABLE sites (
    id            TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT COLLATE "C" NOT NULL,
    address       TEXT COLLATE "C",
    time_zone     TEXT COLLATE "C" NOT NULL,
    owner_id      TEXT COLLATE "C",
    split         TEXT,
    support_email TEXT COLLATE "C",
    support_phone TEXT COLLATE "C",
    support_url   TEXT COLLATE "C",
    created_at    TEXT COLLATE "C" NOT NULL,
    updated_at    TEXT COLLATE "C" NOT NULL
);
-- The site a charger belongs to; NULL: none. A site with chargers cannot be deleted.
ALTER TABLE chargers ADD COLUMN site_id TEXT COLLATE "C" REFERENCES sites (id);
CREATE INDEX chargers_by_site ON chargers (site_id);
