-- Secrets at rest (issue 10 item 6): a product whose secrets are sealed
-- (`devicegate secrets seal`, or created while a secret key file is
-- configured) has its plaintext secrets refused: a row written around the
-- sealing, by hand or by an older version, does not log a device in.
ALTER TABLE products ADD COLUMN secrets_sealed BIGINT NOT NULL DEFAULT 0;
