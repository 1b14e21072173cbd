-- `devicegate device unblock` (issue 12): the time an operator last lifted
-- a device's failed-login blocks; brokers forget its failures when it changes.
ALTER TABLE devices ADD COLUMN unblocked_at BIGINT;
