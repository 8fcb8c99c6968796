-- Webhooks at the level of the best webhook services (issue 15 part 2): Standard Webhooks
-- signing with secret rotation, endpoint health (disabled after failing for days, re-enabled
-- by the tenant, failures recovered since a time), and fair claiming (attempts in flight are
-- counted per endpoint and per tenant).

-- `signing`: 'hmac-sha512' (the engine's X-Webhook-Hmac with `hmac_key`, as before) or
-- 'standard' (webhook-id / webhook-timestamp / webhook-signature with `signing_secret`, a
-- `whsec_` secret). After a rotation the previous secret keeps signing too until
-- `previous_secret_expires_at`. Secrets are kept in clear (they sign), never returned.
ALTER TABLE webhook_subscriptions
    ADD COLUMN signing text NOT NULL DEFAULT 'hmac-sha512'
        CHECK (signing IN ('hmac-sha512', 'standard')),
    ADD COLUMN signing_secret text,
    ADD COLUMN previous_secret text,
    ADD COLUMN previous_secret_expires_at timestamptz,
    -- When the endpoint started failing without a success since (NULL: not failing).
    ADD COLUMN failing_since timestamptz,
    -- Disabled endpoints get no attempts; their pending deliveries end failed.
    ADD COLUMN disabled_at timestamptz,
    ADD COLUMN disabled_reason text,
    ADD CONSTRAINT webhook_subscriptions_signing_secret
        CHECK ((signing = 'standard') = (signing_secret IS NOT NULL)
               AND (signing = 'hmac-sha512' OR hmac_key IS NULL)),
    ADD CONSTRAINT webhook_subscriptions_previous_secret
        CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL));
CREATE INDEX webhook_subscriptions_disabled ON webhook_subscriptions (id)
    WHERE disabled_at IS NOT NULL;

-- `leased_until`: set while an attempt is in flight (the claim's lease), NULL otherwise, so
-- the claim can count attempts in flight per endpoint and per tenant.
ALTER TABLE webhook_deliveries ADD COLUMN leased_until timestamptz;
CREATE INDEX webhook_deliveries_in_flight ON webhook_deliveries (subscription_id)
    WHERE leased_until IS NOT NULL;
-- The fair claim walks the endpoints with pending deliveries, and each one's due rows.
CREATE INDEX webhook_deliveries_pending_by_endpoint
    ON webhook_deliveries (subscription_id, next_attempt_at) WHERE status = 'pending';
-- The cap on pending deliveries per tenant counts and drops by tenant, oldest first.
CREATE INDEX webhook_deliveries_pending_by_tenant
    ON webhook_deliveries (tenant_id, created_at) WHERE status = 'pending';

-- When a session's failed deliveries were last recovered: recovery is rate-limited.
CREATE TABLE webhook_recoveries (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    mode         text NOT NULL CHECK (mode IN ('live', 'test')),
    session_name text NOT NULL,
    recovered_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, mode, session_name)
);
