//! Every background loop of a replica under one supervisor, so shutdown is one graceful
//! step: the stop token is cancelled, each loop finishes the round it is in, and the
//! supervisor waits for them (bounded) instead of aborting them mid-write.

use crate::db::{ChangeFeed, Db};
use crate::services::auth::Auth;
use crate::services::events::Hub;
use crate::services::quota::Quotas;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The usage rollups are written this often.
const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Idempotency records past their 24 h window are purged this often (and once at start).
const IDEMPOTENCY_PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Ended failure windows are purged this often (any replica may).
const FAILURE_PURGE_EVERY: Duration = Duration::from_secs(300);
/// Paced sends past every window are purged this often (any replica may).
const PACING_PURGE_EVERY: Duration = Duration::from_secs(3600);

pub struct Jobs {
    stop: CancellationToken,
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Jobs {
    /// A supervisor with nothing running yet.
    pub fn new() -> Self {
        Self {
            stop: CancellationToken::new(),
            running: Vec::new(),
        }
    }

    /// The gateway's own loops: the usage flush, the purges (idempotency, paced sends,
    /// failures), the event log's poller and the change feed (subscribe to it before this: its
    /// channels are listened to from the start).
    pub fn start(
        db: &Db,
        quotas: &Arc<Quotas>,
        auth: &Arc<Auth>,
        feed: &Arc<ChangeFeed>,
        events: &Arc<Hub>,
    ) -> Self {
        let mut jobs = Self::new();
        let (hub, pool) = (events.clone(), db.clone());
        let elsewhere = feed.subscribe(crate::store::events::NOTIFY_CHANNEL);
        jobs.spawn("event log poller", move |stop| {
            hub.run(pool, elsewhere, stop)
        });
        let flushed = quotas.clone();
        jobs.every("usage flush", USAGE_FLUSH_EVERY, move || {
            let quotas = flushed.clone();
            async move { quotas.flush_usage().await }
        });
        let pool = db.clone();
        jobs.every("idempotency purge", IDEMPOTENCY_PURGE_EVERY, move || {
            let pool = pool.clone();
            async move { crate::services::idempotency::purge_expired(&pool).await }
        });
        let pool = db.clone();
        jobs.every("pacing purge", PACING_PURGE_EVERY, move || {
            let pool = pool.clone();
            async move { crate::services::pacing::purge(&pool).await }
        });
        let purged = auth.clone();
        jobs.every("failure purge", FAILURE_PURGE_EVERY, move || {
            let auth = purged.clone();
            async move { auth.purge_failures().await }
        });
        let feed = feed.clone();
        jobs.spawn(
            "change feed",
            move |stop| async move { feed.run(stop).await },
        );
        jobs
    }

    /// Runs `round` now and then every `period`; a round under way when the stop comes is
    /// finished, never cut.
    pub fn every<F, Fut>(&mut self, name: &'static str, period: Duration, mut round: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, move |stop| async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => round().await,
                }
            }
        });
    }

    /// Runs a loop that watches the stop token itself.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, job: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(job(self.stop.child_token()));
        self.running.push((name, handle));
    }

    /// The token loops on other threads (the webhook worker) stop on.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.child_token()
    }

    /// Asks every loop to stop and waits for them, `bound` in all; a loop still running
    /// then is aborted, and named in the log.
    pub async fn stop(self, bound: Duration) {
        self.stop.cancel();
        let deadline = tokio::time::Instant::now() + bound;
        for (name, mut handle) in self.running {
            match tokio::time::timeout_at(deadline, &mut handle).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(job = name, "background job failed: {e}"),
                Err(_) => {
                    tracing::warn!(job = name, "background job did not stop in time; aborted");
                    handle.abort();
                }
            }
        }
    }
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new()
    }
}
