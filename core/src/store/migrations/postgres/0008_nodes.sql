-- Brokers as nodes (issue 11 item 5): each broker process registers a node
-- with a heartbeat; a device's online state belongs to the node it is
-- connected to. When a node stops heartbeating (killed, partitioned), any
-- other node sets its devices offline once the heartbeat is older than the
-- expiry, and removes it.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,                      -- random, per process
    name         TEXT NOT NULL,                         -- plugin_opt_node_name, for people
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
ALTER TABLE devices ADD COLUMN node_id TEXT;
