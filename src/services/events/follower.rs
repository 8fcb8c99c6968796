//! One reader following its tenant's log: what it missed since its cursor, then every new
//! event as the hub broadcasts it, each exactly once and in cursor order.
//!
//! It subscribes to the hub before it reads the database, so an event is either in the
//! replay or in the broadcast (or both, and then the broadcast's copy is skipped by cursor).
//! A follower too slow for the broadcast (`Lagged`) replays from its position again, and one
//! whose replay fails (the database away) tries again a moment later.

use super::{Filter, Hub, LogEvent};
use crate::db::Db;
use crate::domain::EventCursor;
use crate::store::events as log;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;
use tokio_util::sync::CancellationToken;

/// Events one replay read takes at most.
const REPLAY_PAGE: i64 = 500;
/// Live events handed out together at most (so a stream writes them in one chunk).
const LIVE_BATCH: usize = 256;
/// After a replay that failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

pub struct Follower {
    db: Db,
    live: Receiver<Arc<LogEvent>>,
    closing: CancellationToken,
    /// Every event of the filter at or before it has been handed out.
    position: EventCursor,
    /// The log may hold events after `position` that the broadcast will not bring.
    replaying: bool,
    filter: Filter,
}

impl Follower {
    /// From `after` (what the log holds after it, then live), or from now when `None`.
    pub fn new(hub: &Hub, db: Db, filter: Filter, after: Option<EventCursor>) -> Self {
        let (live, now) = hub.subscribe();
        Self {
            db,
            live,
            closing: hub.closing(),
            position: after.unwrap_or(now),
            replaying: after.is_some(),
            filter,
        }
    }

    /// Where a client resumes from to miss nothing: every event before it was handed out.
    pub fn position(&self) -> EventCursor {
        self.position
    }

    /// The next events (at least one), in cursor order; `None` once the replica shuts down.
    /// Cancel-safe: a call dropped before it answers hands out nothing and loses nothing.
    pub async fn next(&mut self) -> Option<Vec<Arc<LogEvent>>> {
        loop {
            if self.replaying {
                let replayed = self.replay().await?;
                if !replayed.is_empty() {
                    return Some(replayed);
                }
                continue;
            }
            let first = tokio::select! {
                _ = self.closing.cancelled() => return None,
                first = self.live.recv() => first,
            };
            let mut out = Vec::new();
            match first {
                Ok(event) => self.take(event, &mut out),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "an event follower fell behind; replaying");
                    self.replaying = true;
                    continue;
                }
                Err(RecvError::Closed) => return None,
            }
            while out.len() < LIVE_BATCH {
                match self.live.try_recv() {
                    Ok(event) => self.take(event, &mut out),
                    Err(TryRecvError::Lagged(_)) => {
                        self.replaying = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            if !out.is_empty() {
                return Some(out);
            }
        }
    }

    /// One page from the log after `position`; the replay ends with a page that is not full.
    /// `None` once the replica shuts down; a page that could not be read is empty.
    async fn replay(&mut self) -> Option<Vec<Arc<LogEvent>>> {
        let selection = self.filter.selection();
        let page = tokio::select! {
            _ = self.closing.cancelled() => return None,
            page = log::page(&self.db, &selection, self.position, REPLAY_PAGE) => page,
        };
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!("replaying the event log: {e}");
                tokio::select! {
                    _ = self.closing.cancelled() => return None,
                    _ = tokio::time::sleep(RETRY_PAUSE) => return Some(Vec::new()),
                }
            }
        };
        self.replaying = page.events.len() as i64 >= REPLAY_PAGE;
        if let Some(last) = page.events.last() {
            self.position = last.cursor;
        }
        Some(
            page.events
                .into_iter()
                .map(|e| Arc::new(LogEvent::from(e)))
                .collect(),
        )
    }

    /// A broadcast event: skipped when at or before `position` (replayed already), kept when
    /// the filter wants it; either way the position moves past it.
    fn take(&mut self, event: Arc<LogEvent>, out: &mut Vec<Arc<LogEvent>>) {
        if event.cursor <= self.position {
            return;
        }
        self.position = event.cursor;
        if self.filter.admits(&event) {
            out.push(event);
        }
    }
}
