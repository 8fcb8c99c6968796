-- Which tenant owns which upstream session, under which name.
CREATE TABLE sessions (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL,
    upstream_name text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sessions_tenant_name_key UNIQUE (tenant_id, name),
    CONSTRAINT sessions_upstream_name_key UNIQUE (upstream_name)
);

-- First answers of sends carrying an Idempotency-Key, replayed for 24 h.
CREATE TABLE idempotency_records (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    -- NULL while the first request is still in flight.
    status       integer,
    content_type text,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_records_created_at ON idempotency_records (created_at);
