-- devicegate schema, Postgres dialect. Same tables and columns as the
-- SQLite migration; see there for the conventions.

CREATE TABLE products (
    product_key           TEXT PRIMARY KEY,
    product_secret        TEXT,
    dialect               TEXT NOT NULL DEFAULT 'enos' CHECK (dialect IN ('enos', 'aliyun')),
    sign_methods          TEXT NOT NULL DEFAULT 'sha256',
    timestamp_window_secs BIGINT,
    dynamic_activation    BIGINT NOT NULL DEFAULT 0,
    free_client_id        BIGINT NOT NULL DEFAULT 0,
    shared_subscriptions  BIGINT NOT NULL DEFAULT 0,
    allow_retain          BIGINT NOT NULL DEFAULT 0,
    offline_after_secs    BIGINT NOT NULL DEFAULT 0,
    max_sub_devices       BIGINT,
    extra_topics          TEXT NOT NULL DEFAULT '',
    created_at            BIGINT NOT NULL
);

CREATE TABLE devices (
    product_key         TEXT NOT NULL REFERENCES products (product_key) ON DELETE CASCADE,
    device_key          TEXT NOT NULL,
    device_secret       TEXT,
    pending_secret      TEXT,
    token_hash          TEXT,
    gateway_product_key TEXT,
    gateway_device_key  TEXT,
    enabled             BIGINT NOT NULL DEFAULT 1,
    activated_at        BIGINT,
    registered_at       BIGINT,
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
    rules         TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE events (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT,
    address TEXT,
    reason  TEXT
);
CREATE INDEX events_by_time ON events (at);

CREATE TABLE changes (
    id          BIGSERIAL PRIMARY KEY,
    entity      TEXT NOT NULL CHECK (entity IN ('product', 'device', 'principal')),
    product_key TEXT,
    device_key  TEXT,
    name        TEXT,
    at          BIGINT NOT NULL
);

-- Every change wakes the brokers listening on `devicegate_changes` at once;
-- the periodic poll of the change table covers missed notifications.
CREATE FUNCTION devicegate_notify_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('devicegate_changes', NEW.id::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH ROW EXECUTE FUNCTION devicegate_notify_change();
