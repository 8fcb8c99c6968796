-- The event log (issue 15): every relayed event, per tenant, with an opaque increasing cursor
-- `<xid>_<seq>`, read by `GET /v1/events`, the SSE stream and the WebSocket.
--
-- A sequence alone cannot be a cursor: two transactions take 7 and 8, 8 commits first, a
-- reader sees 8 and moves past 7, which commits a moment later and is never read. So rows
-- are ordered by the inserting transaction's id first, and readers read only rows of
-- transactions older than every transaction still running
-- (`xid < pg_snapshot_xmin(pg_current_snapshot())`): no row can ever appear behind a cursor
-- once a reader has passed it. `seq` orders the rows of one transaction.
CREATE SEQUENCE webhook_events_seq AS bigint;

ALTER TABLE webhook_events
    ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN seq bigint NOT NULL DEFAULT nextval('webhook_events_seq');
ALTER SEQUENCE webhook_events_seq OWNED BY webhook_events.seq;

-- A tenant's log in one mode, oldest first; and every tenant's, for each replica's poller.
CREATE INDEX webhook_events_log ON webhook_events (tenant_id, mode, xid, seq);
CREATE INDEX webhook_events_cursor ON webhook_events (xid, seq);
