-- Writes replayed from a broker's spool file carry an id; applying one
-- records its id in the same transaction, so a replay that is interrupted
-- and replayed again writes each state change once. Pruned by age.
CREATE TABLE applied_writes (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL
);
CREATE INDEX applied_writes_by_time ON applied_writes (at);
