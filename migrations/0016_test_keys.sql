-- Test keys (issue 17 part 2): a key's mode, and the mode of everything a test key makes, so
-- test sessions, their webhooks and their events stay apart from the live ones. Every row
-- that exists today is live.

ALTER TABLE tenant_keys
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test'));

-- The same name may exist once per mode; the upstream name stays unique across both (a test
-- session's is its name on this replica's in-process simulator).
ALTER TABLE sessions
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test')),
    DROP CONSTRAINT sessions_tenant_name_key,
    ADD CONSTRAINT sessions_tenant_name_key UNIQUE (tenant_id, mode, name);

-- Subscriptions belong to a session by (tenant, mode, name): a test session's events reach
-- only subscriptions made with a test key, and the reverse.
ALTER TABLE webhook_subscriptions
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test')),
    DROP CONSTRAINT webhook_subscriptions_target_key,
    ADD CONSTRAINT webhook_subscriptions_target_key UNIQUE (tenant_id, mode, session_name, url);

-- The session's mode, from the ingress look-up: the event log is filtered by it.
ALTER TABLE webhook_events
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test'));
ALTER TABLE webhook_deliveries
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test'));

-- Calls made with test keys are rolled up by mode: they spend no quota and the month's usage
-- counts only the live rows, but a tenant sees what its CI does.
ALTER TABLE usage_daily
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test')),
    DROP CONSTRAINT usage_daily_pkey,
    ADD PRIMARY KEY (tenant_id, day, mode, endpoint);
