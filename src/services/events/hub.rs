//! One poller per replica and the broadcast its followers listen to.
//!
//! The poller reads every tenant's settled events after its position, in cursor order, and
//! sends each to the broadcast; `position` then says that every event at or before it was
//! sent. A follower subscribes and reads `position` under the same lock, so it knows exactly
//! which events it will hear and which it must replay from the database. While no follower
//! listens the poller reads no event at all, only moves `position` to the settled end of the
//! log.
//!
//! It is woken by this replica's ingress ([`Hub::ingested`]) and then announces the new events
//! to the other replicas with one NOTIFY per round (never in the ingress's own transaction,
//! which would serialise every commit behind it); it polls every second regardless, and soon
//! again while committed events wait behind an older transaction.

use super::LogEvent;
use crate::db::Db;
use crate::domain::EventCursor;
use crate::store::events as log;
use crate::store::StoreError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

/// Events the broadcast holds for a slow follower; one further behind replays from the log.
const CAPACITY: usize = 4096;
/// Events one round reads at most (another round follows at once when it was full).
const BATCH: i64 = 500;
/// The longest the poller sleeps unless woken.
const FALLBACK_POLL: Duration = Duration::from_secs(1);
/// While committed events wait behind an older transaction: the first pause, doubled up to
/// the last.
const HELD_BACK_FIRST: Duration = Duration::from_millis(5);
const HELD_BACK_MAX: Duration = Duration::from_millis(250);
/// After a failed round (the database away).
const ERROR_PAUSE: Duration = Duration::from_secs(1);

pub struct Hub {
    sender: broadcast::Sender<Arc<LogEvent>>,
    /// Every event at or before it was sent (or nobody was listening).
    position: Mutex<EventCursor>,
    wake: Notify,
    /// This replica's ingress stored events since the last round.
    ingested: AtomicBool,
    /// Cancelled at shutdown: every follower ends.
    closing: CancellationToken,
}

/// What a round of the poller came to.
#[derive(Debug, Clone, Copy, Default)]
struct Round {
    /// As many as one round reads: more may be waiting.
    full: bool,
    held_back: bool,
}

impl Hub {
    /// A hub whose followers hear of events from the settled end of the log on.
    pub async fn start(db: &Db) -> Result<Arc<Self>, StoreError> {
        let position = log::settled(db).await?;
        Ok(Arc::new(Self {
            sender: broadcast::channel(CAPACITY).0,
            position: Mutex::new(position),
            wake: Notify::new(),
            ingested: AtomicBool::new(false),
            closing: CancellationToken::new(),
        }))
    }

    /// The ingress stored events: read them now (and tell the other replicas).
    pub fn ingested(&self) {
        self.ingested.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// A receiver of every event sent from now on, and the position it starts after.
    pub(super) fn subscribe(&self) -> (broadcast::Receiver<Arc<LogEvent>>, EventCursor) {
        let position = self.position.lock().expect("hub position poisoned");
        (self.sender.subscribe(), *position)
    }

    /// Ended when the replica shuts down.
    pub(super) fn closing(&self) -> CancellationToken {
        self.closing.clone()
    }

    /// Ends every follower (shutdown: streams would otherwise hold the server open).
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// How many followers listen on this replica.
    pub fn followers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Polls until `stop`; `elsewhere` is woken by the other replicas' announcements.
    pub async fn run(self: Arc<Self>, db: Db, elsewhere: Arc<Notify>, stop: CancellationToken) {
        let mut held_back_pause = HELD_BACK_FIRST;
        loop {
            let local = self.ingested.swap(false, Ordering::AcqRel);
            let wait = match self.round(&db).await {
                Ok(round) if round.full => Duration::ZERO,
                Ok(round) if round.held_back => {
                    let pause = held_back_pause;
                    held_back_pause = (pause * 2).min(HELD_BACK_MAX);
                    pause
                }
                Ok(_) => {
                    held_back_pause = HELD_BACK_FIRST;
                    FALLBACK_POLL
                }
                Err(e) => {
                    tracing::warn!("reading the event log: {e}");
                    ERROR_PAUSE
                }
            };
            if local {
                if let Err(e) = log::notify(&db).await {
                    tracing::warn!("announcing new events to the other replicas: {e}");
                }
            }
            if wait.is_zero() && !stop.is_cancelled() {
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = elsewhere.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn round(&self, db: &Db) -> Result<Round, StoreError> {
        if self.followers() == 0 {
            let settled = log::settled(db).await?;
            let mut position = self.position.lock().expect("hub position poisoned");
            // A follower that subscribed meanwhile expects what comes after its position.
            if self.followers() == 0 && settled > *position {
                *position = settled;
            }
            return Ok(Round::default());
        }
        let from = *self.position.lock().expect("hub position poisoned");
        let batch = log::after(db, from, BATCH).await?;
        let full = batch.events.len() as i64 >= BATCH;
        let mut position = self.position.lock().expect("hub position poisoned");
        for event in batch.events {
            let event = Arc::new(LogEvent::from(event));
            *position = event.cursor;
            // No receiver left is no error: the next round takes the idle path.
            let _ = self.sender.send(event);
        }
        Ok(Round {
            full,
            held_back: batch.held_back,
        })
    }
}
