-- Admins, tenants and their keys, and the audit log of admin actions.
CREATE TABLE admins (
    id            uuid PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
    id                  uuid PRIMARY KEY,
    name                text NOT NULL,
    plan                text NOT NULL CHECK (plan IN ('basic', 'pro', 'ultra', 'mega', 'custom')),
    -- NULL means unlimited.
    monthly_requests    bigint CHECK (monthly_requests >= 0),
    requests_per_second integer CHECK (requests_per_second > 0),
    max_sessions        integer CHECK (max_sessions >= 0),
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_name_key UNIQUE (name)
);
