//! Group commit: many callers that each wait for one durable write share one transaction.
//!
//! One commit per write costs one WAL flush per write, so the writes a replica can make in a
//! second are capped by the disk's flush rate, whatever the load. Instead each caller queues
//! its item with a reply channel; one task on the database's runtime takes whatever has queued
//! (up to a batch), commits it together, and answers every caller after the commit. Alone, an
//! item is committed at once; under load, the items that arrive during one commit go together
//! in the next, so throughput grows with the load while each caller still waits for about one
//! commit. The webhook ingress (`services::webhooks::ingest`) and the delivery workers'
//! outcomes (`services::webhooks::delivery`) use it.

use crate::db::Db;
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// Why an item was not handed to the committing task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotQueued {
    /// More items are waiting than the queue holds.
    Full,
    /// The task has ended (its runtime is shutting down).
    Closed,
}

type Queued<T, R> = (T, oneshot::Sender<R>);

/// A running group commit of items `T`, each answered with an `R`.
pub struct GroupCommit<T, R> {
    queue: mpsc::Sender<Queued<T, R>>,
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts the committing task on `db`'s runtime. `commit` stores a batch of at most
    /// `max_batch` items and answers one `R` per item, in order; at most `queued` items wait
    /// beside the batch being committed. The task ends when the `GroupCommit` is dropped.
    pub fn start<F, Fut>(db: &Db, max_batch: usize, queued: usize, mut commit: F) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let max_batch = max_batch.max(1);
        let (queue, mut waiting) = mpsc::channel::<Queued<T, R>>(queued.max(1));
        db.spawn(async move {
            let mut batch = Vec::with_capacity(max_batch);
            while waiting.recv_many(&mut batch, max_batch).await > 0 {
                let (items, replies): (Vec<T>, Vec<_>) = batch.drain(..).unzip();
                let outcomes = commit(items).await;
                debug_assert_eq!(outcomes.len(), replies.len(), "one outcome per item");
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // A caller that went away no longer needs its answer; its item is stored.
                    let _ = reply.send(outcome);
                }
            }
        });
        Self { queue }
    }

    /// Queues `item` unless the queue is full; answers once its batch is committed.
    pub async fn try_submit(&self, item: T) -> Result<R, NotQueued> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send((item, reply))
            .map_err(|refused| match refused {
                mpsc::error::TrySendError::Full(_) => NotQueued::Full,
                mpsc::error::TrySendError::Closed(_) => NotQueued::Closed,
            })?;
        // The task only drops a reply unanswered when its runtime is shutting down.
        answer.await.map_err(|_| NotQueued::Closed)
    }

    /// Queues `item`, waiting for room; answers once its batch is committed.
    pub async fn submit(&self, item: T) -> Result<R, NotQueued> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((item, reply))
            .await
            .map_err(|_| NotQueued::Closed)?;
        answer.await.map_err(|_| NotQueued::Closed)
    }
}
