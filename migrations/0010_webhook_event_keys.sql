-- Replay defence at the ingress (security review L9). The upstream's HMAC covers only the
-- body, so a captured event stays valid forever; the ingress refuses events whose `timestamp`
-- is far from now and recognises the ids of events already received. Those ids are kept here,
-- apart from the bodies (`webhook_events`, purged with their deliveries), and for longer, so
-- purging a body never makes its event new again.
CREATE TABLE webhook_event_keys (
    upstream_session text NOT NULL,
    event_id         text NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upstream_session, event_id)
);
CREATE INDEX webhook_event_keys_received_at ON webhook_event_keys (received_at);

INSERT INTO webhook_event_keys (upstream_session, event_id, received_at)
SELECT upstream_session, event_id, received_at FROM webhook_events
ON CONFLICT DO NOTHING;
