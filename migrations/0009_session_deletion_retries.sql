-- Failed upstream session deletions are retried in the background with backoff: a row is due
-- at `next_attempt_at`, and a replica claims it by moving that forward before calling.
ALTER TABLE upstream_session_deletions ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();
