//! The event log: `webhook_events` read in cursor order (`migrations/0017_event_log.sql`).
//!
//! Every read is fenced below `pg_snapshot_xmin(pg_current_snapshot())`, the oldest
//! transaction still running anywhere: rows of older transactions are all committed (or gone
//! for good), so a reader that has passed a cursor never finds a row appear behind it. A row
//! committed by a newer transaction waits until every older one has ended, which is usually a
//! few milliseconds.

use crate::db::Db;
use crate::domain::{EventCursor, Mode};
use crate::store::StoreError;
use uuid::Uuid;

/// One event of the log, with the bytes the tenant receives.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub cursor: EventCursor,
    pub tenant_id: Uuid,
    pub mode: Mode,
    pub session_name: String,
    pub event: String,
    /// The envelope JSON as relayed (session renamed).
    pub body: Vec<u8>,
}

/// Which of a tenant's events a reader wants.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    pub tenant: Uuid,
    pub mode: Mode,
    /// `None`: every session.
    pub sessions: Option<&'a [String]>,
    /// `None`: every event.
    pub events: Option<&'a [String]>,
}

/// One page of a tenant's log and how far the log is settled.
#[derive(Debug)]
pub struct Page {
    pub events: Vec<LoggedEvent>,
    /// Every event the selection will ever hold before this is in `events` or before them.
    pub settled: EventCursor,
}

/// A batch of every tenant's events after a cursor, for a replica's poller.
#[derive(Debug)]
pub struct Batch {
    /// Settled events, in log order.
    pub events: Vec<LoggedEvent>,
    /// Whether committed events wait behind a transaction still running (read again soon).
    pub held_back: bool,
}

fn cursor(xid: &str, seq: i64) -> Result<EventCursor, StoreError> {
    let xid = xid.parse().map_err(|_| {
        StoreError::Other(sqlx::Error::Decode(
            format!("xid8 `{xid}` is not a number").into(),
        ))
    })?;
    Ok(EventCursor { xid, seq })
}

/// Up to `limit` of the selection's settled events after `after`, oldest first.
pub async fn page(
    db: &Db,
    selection: &Selection<'_>,
    after: EventCursor,
    limit: i64,
) -> Result<Page, StoreError> {
    let rows = sqlx::query!(
        r#"WITH fence AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
           SELECT f.xmin::text AS "fence!", e.xid::text AS "xid?", e.seq AS "seq?",
                  e.session_name AS "session_name?", e.event AS "event?", e.body AS "body?"
           FROM fence f LEFT JOIN LATERAL (
               SELECT xid, seq, session_name, event, body FROM webhook_events
               WHERE tenant_id = $1 AND mode = $2 AND (xid, seq) > ($3::text::xid8, $4)
                 AND xid < f.xmin
                 AND ($5::text[] IS NULL OR session_name = ANY($5))
                 AND ($6::text[] IS NULL OR event = ANY($6))
               ORDER BY xid, seq LIMIT $7) e ON true
           ORDER BY e.xid, e.seq"#,
        selection.tenant,
        selection.mode.as_str(),
        after.xid.to_string(),
        after.seq,
        selection.sessions,
        selection.events,
        limit,
    )
    .fetch_all(db)
    .await?;
    let fence = rows.first().map_or("0", |r| r.fence.as_str());
    let settled = EventCursor::before_transaction(cursor(fence, 0)?.xid);
    let mut events = Vec::with_capacity(rows.len());
    for r in &rows {
        let (Some(xid), Some(seq), Some(session_name), Some(event), Some(body)) =
            (&r.xid, r.seq, &r.session_name, &r.event, &r.body)
        else {
            continue;
        };
        events.push(LoggedEvent {
            cursor: cursor(xid, seq)?,
            tenant_id: selection.tenant,
            mode: selection.mode,
            session_name: session_name.clone(),
            event: event.clone(),
            body: body.clone(),
        });
    }
    Ok(Page { events, settled })
}

/// Up to `limit` events of every tenant after `after`, in log order, the settled ones only.
pub async fn after(db: &Db, after: EventCursor, limit: i64) -> Result<Batch, StoreError> {
    let rows = sqlx::query!(
        r#"WITH fence AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
           SELECT e.xid::text AS "xid!", e.seq, e.tenant_id, e.mode AS "mode: Mode",
                  e.session_name, e.event, e.body, e.xid < f.xmin AS "settled!"
           FROM fence f, webhook_events e
           WHERE (e.xid, e.seq) > ($1::text::xid8, $2)
           ORDER BY e.xid, e.seq LIMIT $3"#,
        after.xid.to_string(),
        after.seq,
        limit,
    )
    .fetch_all(db)
    .await?;
    let held_back = rows.iter().any(|r| !r.settled);
    let mut events = Vec::with_capacity(rows.len());
    for r in rows.into_iter().take_while(|r| r.settled) {
        events.push(LoggedEvent {
            cursor: cursor(&r.xid, r.seq)?,
            tenant_id: r.tenant_id,
            mode: r.mode,
            session_name: r.session_name,
            event: r.event,
            body: r.body,
        });
    }
    Ok(Batch { events, held_back })
}

/// The cursor before every event not yet settled: where a reader that wants only what comes
/// from now on starts.
pub async fn settled(db: &Db) -> Result<EventCursor, StoreError> {
    let fence =
        sqlx::query_scalar!(r#"SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS "fence!""#)
            .fetch_one(db)
            .await?;
    Ok(EventCursor::before_transaction(cursor(&fence, 0)?.xid))
}

/// Wakes the pollers of every replica when `db`'s statement (or transaction) commits.
pub async fn notify(db: &Db) -> Result<(), StoreError> {
    sqlx::query!("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
        .execute(db)
        .await?;
    Ok(())
}

/// The channel a replica whose ingress stored events announces them on, once per batch.
pub const NOTIFY_CHANNEL: &str = "wagw_event_log";
