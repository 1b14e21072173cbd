-- devicegate schema, SQLite dialect. Times are milliseconds since the UNIX
-- epoch; flags are 0/1 integers, so one set of queries serves SQLite and
-- Postgres through sqlx's Any driver.

CREATE TABLE products (
    product_key           TEXT PRIMARY KEY,
    product_secret        TEXT,
    dialect               TEXT NOT NULL DEFAULT 'enos' CHECK (dialect IN ('enos', 'aliyun')),
    sign_methods          TEXT NOT NULL DEFAULT 'sha256',
    timestamp_window_secs BIGINT,                       -- NULL: timestamp policy off
    dynamic_activation    BIGINT NOT NULL DEFAULT 0,
    free_client_id        BIGINT NOT NULL DEFAULT 0,
    shared_subscriptions  BIGINT NOT NULL DEFAULT 0,
    allow_retain          BIGINT NOT NULL DEFAULT 0,
    offline_after_secs    BIGINT NOT NULL DEFAULT 0,    -- 0: never idle-offline
    max_sub_devices       BIGINT,                       -- NULL: the dialect's default
    extra_topics          TEXT NOT NULL DEFAULT '',     -- one `pub:|sub:|all:TEMPLATE` per line
    created_at            BIGINT NOT NULL
);

CREATE TABLE devices (
    product_key         TEXT NOT NULL REFERENCES products (product_key) ON DELETE CASCADE,
    device_key          TEXT NOT NULL,
    device_secret       TEXT,                           -- NULL until a dynamic device activates
    pending_secret      TEXT,                           -- issued, not yet confirmed
    token_hash          TEXT,                           -- hex SHA-256 of an Aliyun regnwl token
    gateway_product_key TEXT,
    gateway_device_key  TEXT,
    enabled             BIGINT NOT NULL DEFAULT 1,
    activated_at        BIGINT,                         -- NULL: inactive
    registered_at       BIGINT,                         -- last `device register`
    online              BIGINT NOT NULL DEFAULT 0,
    last_seen_at        BIGINT,
    last_address        TEXT,
    secret_version      BIGINT NOT NULL DEFAULT 1,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (product_key, device_key)
);
CREATE INDEX devices_by_gateway ON devices (gateway_product_key, gateway_device_key);

CREATE TABLE principals (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    rules         TEXT NOT NULL,                        -- one rule per line
    created_at    BIGINT NOT NULL
);

-- Audit log: activations, refused logins, kicks. Pruned by age.
CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT,
    address TEXT,
    reason  TEXT
);
CREATE INDEX events_by_time ON events (at);

-- The change feed: every write that brokers must see adds a row; brokers
-- read the rows after the last id they applied.
CREATE TABLE changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    entity      TEXT NOT NULL CHECK (entity IN ('product', 'device', 'principal')),
    product_key TEXT,
    device_key  TEXT,
    name        TEXT,
    at          BIGINT NOT NULL
);
