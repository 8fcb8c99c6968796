-- Per-second limits are reserved in small blocks (see src/quota/rate.rs): the size of the
-- block the last reservation granted, set and returned by the same conditional statement.
ALTER TABLE quota_rate ADD COLUMN granted integer NOT NULL DEFAULT 0;
