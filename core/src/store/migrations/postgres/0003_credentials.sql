-- Device and product GUIDs, and credentials besides the device secret.
-- Same tables and columns as the SQLite migration; see there.
ALTER TABLE products ADD COLUMN guid TEXT;
ALTER TABLE devices ADD COLUMN guid TEXT;
-- Just-in-time registration of certificates (IDENTITIES.md §3).
ALTER TABLE products ADD COLUMN auto_register_certs BIGINT NOT NULL DEFAULT 0;
UPDATE products SET guid = gen_random_uuid()::text;
UPDATE devices SET guid = gen_random_uuid()::text;
CREATE UNIQUE INDEX products_by_guid ON products (guid);
CREATE UNIQUE INDEX devices_by_guid ON devices (guid);

CREATE TABLE credentials (
    id            BIGSERIAL PRIMARY KEY,
    product_key   TEXT NOT NULL,
    device_key    TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('secret', 'psk', 'certificate', 'access_key')),
    identity      TEXT NOT NULL,
    material      TEXT,
    not_after     BIGINT,
    created_at    BIGINT NOT NULL,
    first_used_at BIGINT,
    revoked_at    BIGINT,
    FOREIGN KEY (product_key, device_key) REFERENCES devices (product_key, device_key) ON DELETE CASCADE
);
CREATE UNIQUE INDEX credentials_by_identity ON credentials (kind, identity);
CREATE INDEX credentials_by_device ON credentials (product_key, device_key);

-- CAs whose certificates a product with auto_register_certs registers on
-- first login: `scope` is a product key, or `*` for the devicegate CA that
-- every such product trusts (recorded by `devicegate ca init`).
CREATE TABLE trusted_cas (
    scope       TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    pem         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (scope, fingerprint)
);

-- Device secrets move here from `devices` (pending secrets and Aliyun
-- tokens stay there: they belong to activation, not to a credential).
INSERT INTO credentials (product_key, device_key, kind, identity, material, created_at)
    SELECT product_key, device_key, 'secret', device_key || '&' || product_key, device_secret, created_at
    FROM devices WHERE device_secret IS NOT NULL;
ALTER TABLE devices DROP COLUMN device_secret;
