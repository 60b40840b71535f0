-- The nodes of a cluster (storage/nodes.py). Each node holds one lease and renews it;
-- whatever a node holds (a charger's connection, an effect it carries out, a job it leads)
-- is held while that lease lives, and taken over by another node once it has run out.
-- On SQLite there is one node, and the same rules.
CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    renewed_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Jobs that run on one node at a time, cluster-wide: deadlines, reconciliation, alerts.
CREATE TABLE job_leases (
    name    TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    since   TEXT NOT NULL
);

-- Messages between nodes too big for a notification (csms/cluster/bus.py): the
-- notification carries the row's id; rows older than a minute are deleted.
CREATE TABLE cluster_mail (
    id         INTEGER PRIMARY KEY,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
