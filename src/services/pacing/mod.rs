//! Send pacing, enforced across every replica: a paced session's sends take a ticket in
//! arrival order (`store::pacing::reserve`, one row lock per session) and go one at a time,
//! each no sooner than its policy allows after the send before it was answered by the
//! upstream, so the upstream sees them at least that far apart. A send that would wait past
//! `WAGW_PACING_MAX_WAIT_MS` is refused at once, having reserved nothing, spent no quota and
//! sent nothing. Which policy applies is cached ([`policies`]): an unpaced session's sends
//! never touch the database for it.

mod line;
mod policies;
mod settings;

pub use line::{PacedSend, Turn};
pub use policies::Policies;
pub use settings::{patch_tenant, SessionPacingView, TenantPacingPatch};

use crate::config::PacingConfig;
use crate::db::{ChangeFeed, Db, Signal};
use crate::domain::pacing::{Hold, Policy};
use crate::metrics::Metrics;
use crate::services::quota::Quotas;
use crate::store::pacing as store;
use crate::store::StoreError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

pub struct Pacing {
    db: Db,
    pub policies: Policies,
    /// The longest a send waits for its turn before it is refused.
    max_wait: Duration,
    /// How long a send released to the upstream may take before the line presumes its
    /// replica dead and moves on: the upstream's timeout, and some.
    in_flight: Duration,
    quotas: Arc<Quotas>,
    metrics: Arc<Metrics>,
    /// Woken when a paced send of any session is answered or given up, on any replica.
    line_moved: Arc<Notify>,
}

#[derive(Debug, thiserror::Error)]
pub enum PacingError {
    #[error("refused by the session's pacing")]
    Refused(Refusal),
    #[error(transparent)]
    Invalid(#[from] crate::domain::Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A policy look-up shared by concurrent callers failed.
    #[error("reading a pacing policy: {0}")]
    Lookup(Arc<StoreError>),
}

/// A send the pacing refused: what held it back, for how long, and which policy said so.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub session: String,
    pub chat: String,
    pub policy: Policy,
    pub hold: Hold,
    /// How long it would have waited; `None`: it may never go (`maxNewChatsPerDay` 0).
    pub wait: Option<Duration>,
    pub max_wait: Duration,
}

impl Refusal {
    /// When a retry would go at once, in whole seconds (at least 1; a day for "never").
    pub fn retry_after(&self) -> u64 {
        self.wait
            .map_or(86_400, |wait| wait.as_millis().div_ceil(1000) as u64)
            .max(1)
    }
}

impl Pacing {
    pub fn new(
        db: Db,
        config: &PacingConfig,
        upstream_timeout: Duration,
        quotas: Arc<Quotas>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            policies: Policies::new(db.clone(), metrics.clone()),
            db,
            max_wait: config.max_wait,
            in_flight: upstream_timeout + Duration::from_secs(5),
            quotas,
            metrics,
            line_moved: Arc::new(Notify::new()),
        }
    }

    /// The policy that paces the session's sends (cached), `None` when nothing does; counted
    /// in the metrics either way.
    pub async fn policy_for(
        &self,
        tenant: Uuid,
        upstream: &str,
    ) -> Result<Option<Policy>, PacingError> {
        let policy = self.policies.effective(tenant, upstream).await?;
        if policy.is_none() {
            self.count("unpaced");
        }
        Ok(policy)
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .pacing_sends
            .with_label_values(&[outcome])
            .inc();
    }

    /// Follows every replica's announcements (this one's included) on `feed`.
    pub fn follow(self: &Arc<Self>, feed: &ChangeFeed) {
        let pacing = Arc::downgrade(self);
        feed.on(store::CHANNEL, move |signal| {
            let pacing = pacing.clone();
            async move {
                let Some(pacing) = pacing.upgrade() else {
                    return;
                };
                match signal {
                    Signal::Notified(payload) => pacing.apply(&payload).await,
                    Signal::Missed => {
                        pacing.policies.forget_everything();
                        pacing.line_moved.notify_waiters();
                    }
                }
            }
        });
    }

    async fn apply(&self, payload: &str) {
        match payload.split_once(':') {
            Some(("line", _)) => self.line_moved.notify_waiters(),
            Some(("policy", upstream)) => self.policies.session_changed(upstream).await,
            Some(("tenant", id)) => match id.parse() {
                Ok(id) => self.policies.tenant_changed(id).await,
                Err(_) => tracing::warn!("ignoring a pacing change for a malformed tenant id"),
            },
            _ => tracing::warn!("ignoring an unknown pacing change notification"),
        }
    }
}

/// Forgets paced sends past every window (any replica may).
pub async fn purge(db: &Db) {
    match store::purge(db).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(purged = n, "old paced sends purged"),
        Err(e) => tracing::warn!("purging old paced sends: {e}"),
    }
}
