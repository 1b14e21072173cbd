-- The provisioning service (IDENTITIES.md §4–§6): device tokens, bootstrap
-- assignments and registration agents.

-- Device tokens: a product's token lifetime (NULL: one hour), and the time
-- a device's tokens were last revoked (tokens issued before are refused).
ALTER TABLE products ADD COLUMN token_ttl_secs BIGINT;
ALTER TABLE devices ADD COLUMN tokens_revoked_at BIGINT;
-- Bootstrap: the broker URL a device (else its product) is assigned to.
ALTER TABLE products ADD COLUMN server_url TEXT;
ALTER TABLE devices ADD COLUMN server_url TEXT;

-- Public keys that verify device tokens, by key id (`token keygen`). The
-- private keys stay in files with the service.
CREATE TABLE token_keys (
    kid        TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,                           -- 32 bytes, hex
    created_at BIGINT NOT NULL
);

-- Registration agents: bearer tokens stored as their SHA-256, scoped to
-- products (one key per line) or, with `admin`, to the admin API.
CREATE TABLE agents (
    name       TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    products   TEXT NOT NULL DEFAULT '',
    admin      BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,                                  -- NULL: never
    revoked_at BIGINT
);

-- The change feed learns a fourth entity, `token_key` (by `name` = kid).
-- SQLite cannot alter a CHECK: the table is rebuilt with its ids and its
-- AUTOINCREMENT position, so brokers that applied up to an id go on from it.
CREATE TABLE changes_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    entity      TEXT NOT NULL CHECK (entity IN ('product', 'device', 'principal', 'token_key')),
    product_key TEXT,
    device_key  TEXT,
    name        TEXT,
    at          BIGINT NOT NULL
);
INSERT INTO changes_new (id, entity, product_key, device_key, name, at)
    SELECT id, entity, product_key, device_key, name, at FROM changes;
DELETE FROM sqlite_sequence WHERE name = 'changes_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'changes_new', seq FROM sqlite_sequence WHERE name = 'changes';
DROP TABLE changes;
ALTER TABLE changes_new RENAME TO changes;
