//! Group commit for the ingress: the upstream is answered only once its event is durable, and
//! events arriving together share one transaction.
//!
//! One commit per event caps the ingress at one fsync per event (about 240 a second on a small
//! machine). Instead verified events go through a [`GroupCommit`]: whatever is queued (up to
//! `WAGW_INGRESS_BATCH`) is stored in one statement, and every waiter is answered after the
//! commit.
//!
//! A batch that fails while the database is away answers every waiter "unavailable" (503 with
//! `Retry-After`: the upstream retries, and the dedupe on event id makes a retry of an event
//! that did commit harmless). A batch that fails for any other reason is stored again one
//! event at a time, so one event the database refuses cannot fail the events beside it.

use crate::db::group_commit::{GroupCommit, NotQueued};
use crate::db::Db;
use crate::metrics::Metrics;
use crate::store::webhooks::outbox::{self, NewEvent};
use crate::store::StoreError;
use std::sync::Arc;
use std::time::Instant;

/// Events that may wait for the group commit, in batches of `WAGW_INGRESS_BATCH`; beyond
/// that the ingress answers 503 at once rather than hold ever more upstream requests open.
const QUEUED_BATCHES: usize = 8;

/// What became of an event handed to [`Ingest::store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored now, with this many deliveries (0: no subscription wants it).
    New { deliveries: i64 },
    /// Stored before: acknowledged, not stored twice.
    Seen,
}

/// Why an event was not stored; the upstream is told to retry each of these later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("the database is unavailable")]
    Unavailable,
    /// More events are waiting for the group commit than it takes at once, several times over.
    #[error("too many events are waiting to be stored")]
    Saturated,
    /// The database refused this event (logged with the cause).
    #[error("the event could not be stored")]
    Failed,
}

impl From<&StoreError> for IngestError {
    fn from(err: &StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => Self::Unavailable,
            _ => Self::Failed,
        }
    }
}

/// The replica's group commit: where the ingress hands verified events.
pub struct Ingest {
    commits: GroupCommit<NewEvent, Result<Stored, IngestError>>,
}

impl Ingest {
    /// Starts the committing task on the database's runtime; it ends when `Ingest` is dropped
    /// (or with that runtime).
    pub fn start(db: Db, metrics: Arc<Metrics>, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        let commits = GroupCommit::start(
            &db.clone(),
            max_batch,
            max_batch * QUEUED_BATCHES,
            move |events: Vec<NewEvent>| {
                let (db, metrics) = (db.clone(), metrics.clone());
                async move { commit(&db, &metrics, &events).await }
            },
        );
        Self { commits }
    }

    /// Stores `event` with the events queued beside it; answers once it is committed.
    pub async fn store(&self, event: NewEvent) -> Result<Stored, IngestError> {
        self.commits
            .try_submit(event)
            .await
            .map_err(|not_queued| match not_queued {
                NotQueued::Full => IngestError::Saturated,
                NotQueued::Closed => IngestError::Unavailable,
            })?
    }
}

/// Stores `events` together, or one by one when together failed for a reason of theirs.
async fn commit(
    db: &Db,
    metrics: &Metrics,
    events: &[NewEvent],
) -> Vec<Result<Stored, IngestError>> {
    let err = match insert(db, metrics, events).await {
        Ok(stored) => return stored.into_iter().map(Ok).collect(),
        Err(err) => err,
    };
    if matches!(err, StoreError::Unavailable(_)) || events.len() == 1 {
        return vec![Err(failed(&err, events)); events.len()];
    }
    tracing::warn!(
        events = events.len(),
        error = ?err, "webhook ingress: a batch failed; storing its events one by one"
    );
    let mut outcomes = Vec::with_capacity(events.len());
    for event in events {
        let alone = std::slice::from_ref(event);
        outcomes.push(match insert(db, metrics, alone).await {
            Ok(stored) => Ok(stored[0]),
            Err(err) => Err(failed(&err, alone)),
        });
    }
    outcomes
}

/// Logs why `events` were not stored; answers what their waiters are told.
fn failed(err: &StoreError, events: &[NewEvent]) -> IngestError {
    let answer = IngestError::from(err);
    match answer {
        IngestError::Unavailable => tracing::warn!(
            events = events.len(),
            error = ?err, "webhook ingress: the database is unavailable; the upstream is told to retry"
        ),
        _ => tracing::error!(
            event_id = %events[0].event_id,
            error = ?err, "webhook ingress: storing an event failed"
        ),
    }
    answer
}

/// One statement, so one transaction, for all of `events`.
async fn insert(
    db: &Db,
    metrics: &Metrics,
    events: &[NewEvent],
) -> Result<Vec<Stored>, StoreError> {
    let started = Instant::now();
    let made = outbox::insert_events(db, events).await?;
    metrics.observe_ingress_commit(events.len(), started.elapsed());
    Ok(made
        .into_iter()
        .map(|made| match made {
            Some(deliveries) => Stored::New { deliveries },
            None => Stored::Seen,
        })
        .collect())
}
