-- Bulk import (issue 11): one change row per imported batch instead of one
-- per device. Entity `devices` names the product in `product_key` and the
-- batch's device keys, one per line, in `device_keys`; brokers load just
-- those devices.
ALTER TABLE changes ADD COLUMN device_keys TEXT;
ALTER TABLE changes DROP CONSTRAINT changes_entity_check;
ALTER TABLE changes ADD CONSTRAINT changes_entity_check
    CHECK (entity IN ('product', 'device', 'principal', 'token_key', 'devices'));
