//! The event log's readers: a page of a tenant's log (`GET /v1/events`), and followers that
//! replay what a client missed and then stay live (the SSE stream and the WebSocket).
//!
//! - `hub`: one poller per replica reads every tenant's new events in cursor order (woken at
//!   once by this replica's ingress, by a NOTIFY from another replica's, and every second
//!   regardless) and broadcasts them to this replica's followers.
//! - `follower`: one reader's position in its tenant's log. It subscribes to the hub first and
//!   then replays from its cursor out of the database, so nothing falls between the two; a
//!   follower that falls behind the broadcast replays again from where it was, never skipping.
//!
//! Ordering and completeness come from the store (`store::events`): events are read in cursor
//! order and only once every older transaction has ended, so no event ever appears behind a
//! cursor a reader has passed.

mod follower;
mod hub;

pub use follower::Follower;
pub use hub::Hub;

use crate::db::Db;
use crate::domain::{EventCursor, Mode};
use crate::store::events::{self as log, LoggedEvent, Selection};
use crate::store::StoreError;
use bytes::Bytes;
use uuid::Uuid;

/// The most events one page holds, and how many a page holds unless asked otherwise.
pub const MAX_PAGE: i64 = 500;
pub const DEFAULT_PAGE: i64 = 100;

/// One event as every reader sends it.
#[derive(Debug)]
pub struct LogEvent {
    pub cursor: EventCursor,
    pub tenant_id: Uuid,
    pub mode: Mode,
    pub session: String,
    pub event: String,
    /// The relayed envelope with its `cursor` added: the bytes every reader sends.
    pub json: Bytes,
}

impl From<LoggedEvent> for LogEvent {
    fn from(e: LoggedEvent) -> Self {
        let json = with_cursor(&e.body, e.cursor);
        Self {
            cursor: e.cursor,
            tenant_id: e.tenant_id,
            mode: e.mode,
            session: e.session_name,
            event: e.event,
            json,
        }
    }
}

/// The envelope (a JSON object, as the ingress stored it) with `"cursor"` as its last field,
/// spliced in without parsing the envelope again.
fn with_cursor(body: &[u8], cursor: EventCursor) -> Bytes {
    let field = format!("\"cursor\":\"{cursor}\"");
    let trimmed = body.trim_ascii_end();
    let Some(open) = trimmed.strip_suffix(b"}") else {
        // Not an object: the ingress never stores one; whatever it is goes out whole.
        let envelope = serde_json::from_slice(body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into()));
        let wrapped = serde_json::json!({"cursor": cursor.to_string(), "envelope": envelope});
        return Bytes::from(wrapped.to_string());
    };
    let mut out = Vec::with_capacity(body.len() + field.len() + 2);
    out.extend_from_slice(open);
    if open.trim_ascii_end() != b"{" {
        out.push(b',');
    }
    out.extend_from_slice(field.as_bytes());
    out.push(b'}');
    Bytes::from(out)
}

/// Which of a tenant's events a reader gets: its own tenant and mode always, the sessions its
/// key may use, and what it asked for.
#[derive(Debug, Clone)]
pub struct Filter {
    pub tenant: Uuid,
    pub mode: Mode,
    /// `None`: every session.
    pub sessions: Option<Vec<String>>,
    /// `None`: every event.
    pub events: Option<Vec<String>>,
}

impl Filter {
    pub fn admits(&self, e: &LogEvent) -> bool {
        e.tenant_id == self.tenant
            && e.mode == self.mode
            && self
                .sessions
                .as_ref()
                .is_none_or(|s| s.contains(&e.session))
            && self.events.as_ref().is_none_or(|s| s.contains(&e.event))
    }

    fn selection(&self) -> Selection<'_> {
        Selection {
            tenant: self.tenant,
            mode: self.mode,
            sessions: self.sessions.as_deref(),
            events: self.events.as_deref(),
        }
    }
}

/// A page of the log and the cursor to read on from.
pub struct Page {
    pub events: Vec<LogEvent>,
    /// The last event's cursor when the page is full; past everything settled otherwise, so a
    /// reader whose filter matches little does not scan the same rows again.
    pub next: EventCursor,
}

/// Up to `limit` of the filter's events after `after`, oldest first.
pub async fn page(
    db: &Db,
    filter: &Filter,
    after: EventCursor,
    limit: i64,
) -> Result<Page, StoreError> {
    let found = log::page(db, &filter.selection(), after, limit).await?;
    let last = found.events.last().map(|e| e.cursor);
    let next = match last {
        Some(last) if found.events.len() as i64 >= limit => last,
        last => after.max(found.settled).max(last.unwrap_or_default()),
    };
    Ok(Page {
        events: found.events.into_iter().map(LogEvent::from).collect(),
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_is_the_envelopes_last_field() {
        let c = EventCursor { xid: 7, seq: 3 };
        let json =
            |b: &[u8]| serde_json::from_slice::<serde_json::Value>(&with_cursor(b, c)).unwrap();
        let out = json(br#"{"id":"evt_1","event":"message"}"#);
        assert_eq!(out["cursor"], "7_3");
        assert_eq!(out["id"], "evt_1");
        assert_eq!(json(b"{}")["cursor"], "7_3");
        assert_eq!(json(b"{ }\n")["cursor"], "7_3");
        assert_eq!(json(b"[1]")["envelope"][0], 1);
        let keys: Vec<String> = out.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["id", "event", "cursor"]);
    }
}
