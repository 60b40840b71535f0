-- Which node holds each charger's WebSocket (csms/store/connections.py): one row per
-- charger that ever connected. `node_id` is set while a connection lasts and counts only
-- while that node's lease lives (storage/nodes.py). `generation` grows with each
-- connection of the charger, so news of an older one never overrides a newer one; the
-- session id tells one connection from the next, so a late close of an old one changes
-- nothing.
CREATE TABLE charger_connections (
    charger_id   TEXT PRIMARY KEY,
    node_id      TEXT,
    session_id   TEXT,
    generation   INTEGER NOT NULL,
    connected_at TEXT NOT NULL
);
CREATE INDEX charger_connections_by_node ON charger_connections (node_id);
