-- Webhook relay: tenants' subscriptions, the gateway's own registration with the upstream per
-- upstream session, the inbox of verified events and the delivery outbox.

-- A tenant's webhook on one of its sessions, by the tenant's session name: it outlives the
-- upstream session, so a session deleted and created again under the same name keeps it.
CREATE TABLE webhook_subscriptions (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_name        text NOT NULL,
    url                 text NOT NULL,
    events              text[] NOT NULL CHECK (cardinality(events) > 0),
    -- Needed in clear to sign deliveries; never returned by the API.
    hmac_key            text,
    retry_policy        text NOT NULL CHECK (retry_policy IN ('constant', 'linear', 'exponential')),
    retry_delay_seconds integer NOT NULL CHECK (retry_delay_seconds >= 0),
    retry_attempts      integer NOT NULL CHECK (retry_attempts >= 1),
    custom_headers      jsonb NOT NULL DEFAULT '[]',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_subscriptions_target_key UNIQUE (tenant_id, session_name, url)
);

-- The gateway's ingress for one upstream session: the unguessable token in its URL, the key
-- the upstream signs with, and the events the upstream currently has registered.
CREATE TABLE webhook_ingress (
    upstream_name text PRIMARY KEY REFERENCES sessions (upstream_name) ON DELETE CASCADE,
    token         text NOT NULL,
    hmac_key      text NOT NULL,
    -- NULL: not (or no longer) registered with the upstream.
    events        text[],
    registered_at timestamptz,
    CONSTRAINT webhook_ingress_token_key UNIQUE (token)
);

-- Verified events, stored before the upstream is acknowledged. `body` holds the exact bytes
-- tenants receive (session renamed), so every attempt signs the same bytes.
CREATE TABLE webhook_events (
    id               uuid PRIMARY KEY,
    upstream_session text NOT NULL,
    event_id         text NOT NULL,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_name     text NOT NULL,
    event            text NOT NULL,
    body             bytea NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_events_dedupe_key UNIQUE (upstream_session, event_id)
);
CREATE INDEX webhook_events_received_at ON webhook_events (received_at);

-- One row per (event, matching subscription). `next_attempt_at` is also the claim: a worker
-- moves it past the attempt's deadline when it takes the row, so a replica that dies mid-
-- attempt leaves a row that simply falls due again.
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    event_pk        uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_name    text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text,
    last_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CONSTRAINT webhook_deliveries_once_key UNIQUE (event_pk, subscription_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_listing ON webhook_deliveries (tenant_id, session_name, created_at DESC);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (status, finished_at) WHERE status <> 'pending';
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id);
