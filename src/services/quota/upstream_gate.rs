//! The organisation's per-second upstream budget: never more than N calls in any sliding
//! one-second window, across every replica, with a fair queue in front of it.
//!
//! The budget is N rows in `upstream_slots`; a call takes a slot not used within the window
//! (one statement, `SKIP LOCKED` so replicas do not wait on each other) and holds it until the
//! upstream has answered; only then does the slot's window start. The upstream received the
//! call before it answered, so two calls on one slot arrive more than a window apart whatever
//! the latency between gateway and upstream, and no window ever holds more than N arrivals.
//! A replica that dies holding a slot loses it for `HOLD` at most. When none is free,
//! calls wait in a queue that serves tenants round-robin, so one busy tenant cannot starve the
//! others, and are refused with 429 after a bounded wait: the upstream never has to say 429.

use crate::db::Db;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Calls waiting for the organisation's per-second budget on this replica, right now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueReport {
    /// Calls waiting for a slot.
    #[schema(minimum = 0)]
    pub waiting_calls: u64,
    /// The tenants those calls belong to (served in turn).
    #[schema(minimum = 0)]
    pub waiting_tenants: u64,
    /// How long a call may wait before a 429 (`WAGW_UPSTREAM_QUEUE_WAIT_MS`).
    #[schema(minimum = 0)]
    pub max_wait_ms: u64,
}

/// The window: a slot is free again this long after its call was answered (a small margin for
/// clocks that tick differently on the database's and the upstream's hosts).
const WINDOW_MS: i64 = 1010;
/// How long a taken slot stays held when its call is never settled (the replica died): the
/// upstream timeout (`WAGW_UPSTREAM_TIMEOUT_SECS`, 30 s by default) plus a margin. A dropped
/// admission releases its slot at once (`Admission`'s Drop), so this only covers a dead replica.
const HOLD_MS: i64 = 45_000;
/// How often the dispatcher looks again when no slot was free.
const RETRY_EVERY: Duration = Duration::from_millis(5);

pub enum GateRefusal {
    /// Waited the bounded time without getting a slot.
    Busy,
    Unavailable(sqlx::Error),
}

#[derive(Default)]
struct FairQueue {
    /// Waiters per tenant, and the round-robin order of tenants with waiters.
    waiting: HashMap<Uuid, VecDeque<oneshot::Sender<i32>>>,
    order: VecDeque<Uuid>,
    dispatching: bool,
}

impl FairQueue {
    fn push(&mut self, tenant: Uuid, waiter: oneshot::Sender<i32>) {
        let queue = self.waiting.entry(tenant).or_default();
        if queue.is_empty() {
            self.order.push_back(tenant);
        }
        queue.push_back(waiter);
    }

    /// The next live waiter, taking tenants in turn.
    fn pop(&mut self) -> Option<oneshot::Sender<i32>> {
        while let Some(tenant) = self.order.pop_front() {
            let queue = self.waiting.get_mut(&tenant)?;
            while let Some(waiter) = queue.pop_front() {
                if waiter.is_closed() {
                    continue; // gave up waiting
                }
                if queue.iter().any(|w| !w.is_closed()) {
                    self.order.push_back(tenant);
                } else {
                    self.waiting.remove(&tenant);
                }
                return Some(waiter);
            }
            self.waiting.remove(&tenant);
        }
        None
    }
}

pub struct UpstreamGate {
    pool: Db,
    slots: u32,
    max_wait: Duration,
    queue: Mutex<FairQueue>,
}

impl UpstreamGate {
    /// Makes the slot table match the plan's rate (every replica runs the same configuration).
    pub async fn new(pool: Db, rps: u32, max_wait: Duration) -> Result<Arc<Self>, sqlx::Error> {
        let rps = rps.max(1) as i32;
        sqlx::query!(
            "INSERT INTO upstream_slots (slot) SELECT generate_series(0, $1::int - 1)
             ON CONFLICT DO NOTHING",
            rps
        )
        .execute(&pool)
        .await?;
        sqlx::query!("DELETE FROM upstream_slots WHERE slot >= $1", rps)
            .execute(&pool)
            .await?;
        Ok(Arc::new(Self {
            pool,
            slots: rps as u32,
            max_wait,
            queue: Mutex::default(),
        }))
    }

    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// Who waits in the fair queue now (callers that gave up are not counted).
    pub fn queue_report(&self) -> QueueReport {
        let queue = self.queue.lock().expect("queue poisoned");
        let live = |q: &VecDeque<oneshot::Sender<i32>>| q.iter().filter(|w| !w.is_closed()).count();
        let per_tenant: Vec<usize> = queue.waiting.values().map(live).collect();
        QueueReport {
            waiting_calls: per_tenant.iter().sum::<usize>() as u64,
            waiting_tenants: per_tenant.iter().filter(|n| **n > 0).count() as u64,
            max_wait_ms: self.max_wait.as_millis() as u64,
        }
    }

    /// Waits (fairly, boundedly) for a slot; answers the slot, to `release` once the call was
    /// answered (or never sent).
    pub async fn acquire(self: &Arc<Self>, tenant: Uuid) -> Result<i32, GateRefusal> {
        let queue_empty = self
            .queue
            .lock()
            .expect("queue poisoned")
            .waiting
            .is_empty();
        if queue_empty {
            if let Some(slot) = self.try_slot().await.map_err(GateRefusal::Unavailable)? {
                return Ok(slot);
            }
        }
        let (tx, rx) = oneshot::channel();
        let start_dispatcher = {
            let mut queue = self.queue.lock().expect("queue poisoned");
            queue.push(tenant, tx);
            !std::mem::replace(&mut queue.dispatching, true)
        };
        if start_dispatcher {
            let gate = self.clone();
            tokio::spawn(async move { gate.dispatch().await });
        }
        match tokio::time::timeout(self.max_wait, rx).await {
            Ok(Ok(slot)) => Ok(slot),
            // Timed out (dropping `rx` tells the dispatcher we left), or the dispatcher failed.
            _ => Err(GateRefusal::Busy),
        }
    }

    /// Hands free slots to waiters in round-robin order until nobody waits.
    async fn dispatch(self: Arc<Self>) {
        loop {
            let has_waiters = {
                let mut queue = self.queue.lock().expect("queue poisoned");
                if queue
                    .waiting
                    .values()
                    .all(|q| q.iter().all(|w| w.is_closed()))
                {
                    queue.waiting.clear();
                    queue.order.clear();
                    queue.dispatching = false;
                    false
                } else {
                    true
                }
            };
            if !has_waiters {
                return;
            }
            match self.try_slot().await {
                Ok(Some(slot)) => {
                    let waiter = self.queue.lock().expect("queue poisoned").pop();
                    let unused = match waiter {
                        Some(w) => w.send(slot).is_err(),
                        None => true,
                    };
                    if unused {
                        // Nobody took it (they left): its window starts now, which only makes
                        // us more conservative.
                        self.release(slot).await;
                    }
                }
                Ok(None) => tokio::time::sleep(RETRY_EVERY).await,
                Err(e) => {
                    tracing::warn!("upstream budget: {e}");
                    tokio::time::sleep(RETRY_EVERY * 10).await;
                }
            }
        }
    }

    /// Takes a free slot and holds it (`last_used` in the future) until `release`.
    async fn try_slot(&self) -> Result<Option<i32>, sqlx::Error> {
        sqlx::query_scalar!(
            "UPDATE upstream_slots SET last_used = clock_timestamp() + make_interval(secs => $2::double precision / 1000)
              WHERE slot = (SELECT slot FROM upstream_slots
                             WHERE last_used <= clock_timestamp() - make_interval(secs => $1::double precision / 1000)
                             ORDER BY last_used LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING slot",
            WINDOW_MS as f64,
            HOLD_MS as f64
        )
        .fetch_optional(&self.pool)
        .await
    }

    /// The slot's call was answered (or never sent): its window starts now. If this fails the
    /// slot stays held until `HOLD_MS` runs out, which is conservative.
    pub async fn release(&self, slot: i32) {
        let released = sqlx::query!(
            "UPDATE upstream_slots SET last_used = LEAST(last_used, clock_timestamp()) WHERE slot = $1",
            slot
        )
        .execute(&self.pool)
        .await;
        if let Err(e) = released {
            tracing::warn!(slot, "upstream budget: could not release a slot: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_tenants_in_turn_and_skips_those_who_left() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut q = FairQueue::default();
        let mut receivers = Vec::new();
        for tenant in [a, a, a, b] {
            let (tx, rx) = oneshot::channel();
            q.push(tenant, tx);
            receivers.push((tenant, rx));
        }
        // The second of a's waiters gave up.
        receivers.remove(1);
        let mut served = Vec::new();
        while let Some(w) = q.pop() {
            w.send(0).unwrap();
            for (tenant, rx) in receivers.iter_mut() {
                if rx.try_recv().is_ok() {
                    served.push(*tenant);
                }
            }
        }
        assert_eq!(served, vec![a, b, a]);
    }
}
