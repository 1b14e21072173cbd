-- Bulk import (issue 11): one change row per imported batch instead of one
-- per device. Entity `devices` names the product in `product_key` and the
-- batch's device keys, one per line, in `device_keys`; brokers load just
-- those devices. SQLite cannot alter a CHECK: the table is rebuilt with its
-- ids and its AUTOINCREMENT position, as in 0004.
CREATE TABLE changes_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    entity      TEXT NOT NULL CHECK (entity IN ('product', 'device', 'principal', 'token_key', 'devices')),
    product_key TEXT,
    device_key  TEXT,
    name        TEXT,
    at          BIGINT NOT NULL,
    device_keys TEXT
);
INSERT INTO changes_new (id, entity, product_key, device_key, name, at)
    SELECT id, entity, product_key, device_key, name, at FROM changes;
DELETE FROM sqlite_sequence WHERE name = 'changes_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'changes_new', seq FROM sqlite_sequence WHERE name = 'changes';
DROP TABLE changes;
ALTER TABLE changes_new RENAME TO changes;
