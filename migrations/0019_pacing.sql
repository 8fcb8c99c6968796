-- Send pacing (issue 17 part 1): per-session policies, the tenant's default and ceiling, and
-- the line of paced sends that every replica shares. PostgreSQL is the one clock of record:
-- every time below is its now().

-- A tenant's pacing, set by an admin: `pacing_default` applies to its sessions that have no
-- policy of their own; `pacing_ceiling` is the loosest any of its sessions may go. NULL: none.
-- The JSON is a policy as the API shows it ({"minIntervalMs": ..., ...}), checked by the
-- gateway before it is written.
ALTER TABLE tenants
    ADD COLUMN pacing_default jsonb,
    ADD COLUMN pacing_ceiling jsonb;

-- One row per paced session: its own policy (NULL: none of its own) and its line.
-- `last_ticket` is the last ticket issued: the row is locked to issue the next, so tickets are
-- numbered in the order sends arrived, across replicas.
CREATE TABLE session_pacing (
    upstream_name text PRIMARY KEY REFERENCES sessions (upstream_name) ON DELETE CASCADE,
    policy        jsonb,
    last_ticket   bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Every paced send, by ticket. A send waits until `slot_at` (predicted when it was reserved)
-- and until the send before it was answered; `sent_at` is when it was released to the
-- upstream, `done_at` when the upstream answered (or the call ended). `expires_at` bounds how
-- long a send still waiting or in flight may hold the line (its replica may have died).
-- Kept a day and an hour: the longest window a policy counts is a day.
CREATE TABLE paced_sends (
    upstream_name text NOT NULL REFERENCES sessions (upstream_name) ON DELETE CASCADE,
    ticket        bigint NOT NULL,
    chat_id       text NOT NULL,
    -- The chat was never sent to nor heard from before this send.
    new_chat      boolean NOT NULL,
    -- minIntervalMs plus this send's random jitter: its least distance from the send before.
    gap_ms        integer NOT NULL CHECK (gap_ms >= 0),
    reserved_at   timestamptz NOT NULL DEFAULT now(),
    slot_at       timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    sent_at       timestamptz,
    done_at       timestamptz,
    state         text NOT NULL DEFAULT 'waiting'
                  CHECK (state IN ('waiting', 'sending', 'sent', 'abandoned')),
    PRIMARY KEY (upstream_name, ticket)
);
CREATE INDEX paced_sends_chat ON paced_sends (upstream_name, chat_id);
CREATE INDEX paced_sends_reserved_at ON paced_sends (reserved_at);

-- The chats a paced session has sent to, for as long as the session lives: a chat here is
-- not new (nor is one the session heard from, in `webhook_events`).
CREATE TABLE paced_chats (
    upstream_name text NOT NULL REFERENCES sessions (upstream_name) ON DELETE CASCADE,
    chat_id       text NOT NULL,
    first_sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upstream_name, chat_id)
);

-- Usage: paced sends, how many waited and how long, and refusals, per session and day.
CREATE TABLE pacing_daily (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day          date NOT NULL,
    mode         text NOT NULL CHECK (mode IN ('live', 'test')),
    session_name text NOT NULL,
    sends        bigint NOT NULL DEFAULT 0,
    waited       bigint NOT NULL DEFAULT 0,
    wait_ms      bigint NOT NULL DEFAULT 0,
    refusals     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, mode, session_name)
);
