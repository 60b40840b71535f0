-- Which node holds each charger's WebSocket: the same table as
-- ../0004_charger_connections.sql.
CREATE TABLE charger_connections (
    charger_id   TEXT COLLATE "C" PRIMARY KEY,
    node_id      TEXT COLLATE "C",
    session_id   TEXT COLLATE "C",
    generation   BIGINT NOT NULL,
    connected_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX charger_connections_by_node ON charger_connections (node_id);
