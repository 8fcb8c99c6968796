-- Monthly quotas, per tenant and for the organisation's upstream plan. `leased` is what
-- replicas have taken (spent, or held in memory to spend): it only grows, except when a
-- replica hands back what it did not spend at shutdown, so what was admitted never exceeds it.
CREATE TABLE quota_months (
    subject text NOT NULL,   -- a tenant's id, or 'upstream' for the organisation's plan
    month   text NOT NULL,   -- 'YYYY-MM', UTC
    leased  bigint NOT NULL DEFAULT 0,
    -- Admin top-ups (and resets, which top up by what was used) add to the month's allowance.
    bonus   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, month)
);

-- Per-second limits as GCRA: the theoretical arrival time of the next request, per subject.
CREATE TABLE quota_rate (
    subject text PRIMARY KEY,
    tat     timestamptz NOT NULL
);

-- The upstream's per-second budget as N slots, each usable once per sliding window: at most N
-- calls in any window, across every replica.
CREATE TABLE upstream_slots (
    slot      integer PRIMARY KEY,
    last_used timestamptz NOT NULL DEFAULT '-infinity'
);

-- Usage rollups, so reports never scan a log.
CREATE TABLE usage_daily (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day       date NOT NULL,
    endpoint  text NOT NULL,
    requests  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, endpoint)
);

CREATE TABLE refusals_daily (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day       date NOT NULL,
    reason    text NOT NULL,
    refusals  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, reason)
);
