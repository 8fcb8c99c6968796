-- Tenant keys (only an argon2id hash of the secret is kept), the admin audit log, and the
-- upstream sessions a deleted tenant left behind, until the upstream confirms their deletion.
CREATE TABLE tenant_keys (
    -- The public key id inside `wagw_<id>_<secret><checksum>`.
    id           text PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL,
    prefix       text NOT NULL,
    secret_hash  text NOT NULL CHECK (secret_hash LIKE '$argon2id$%'),
    scopes       text[] NOT NULL,
    -- NULL: every session of the tenant.
    sessions     text[],
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    -- In the future while a rotated key's grace period runs.
    revoked_at   timestamptz,
    replaced_by  text
);
CREATE INDEX tenant_keys_tenant ON tenant_keys (tenant_id, created_at);

CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    -- Kept as text too: the admin may be deleted later, the record stays.
    admin_id       uuid,
    admin_username text NOT NULL,
    action         text NOT NULL,
    target_type    text,
    target_id      text,
    client_addr    text,
    request_id     text,
    details        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_target ON audit_log (target_id);

CREATE TABLE upstream_session_deletions (
    upstream_name text PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text
);
