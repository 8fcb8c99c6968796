//! Which policy paces a session, cached so that an unpaced session's sends never go to the
//! database for it: the tenant's default and ceiling per tenant, the session's own policy per
//! upstream session, each kept until a change is announced (`store::pacing::CHANNEL`, sent in
//! the transaction that makes the change, so no change goes unannounced while the change feed
//! is connected, and a lost connection forgets everything).

use crate::db::Db;
use crate::domain::pacing::{Policy, TenantPacing};
use crate::metrics::Metrics;
use crate::services::cache::InvalidatingCache;
use crate::services::pacing::PacingError;
use crate::store::pacing as store;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// An entry no send asked for in this long is dropped (and read again when needed).
const IDLE: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct Policies {
    db: Db,
    tenants: InvalidatingCache<Uuid, TenantPacing>,
    /// By upstream session: a session deleted and made again has a new one, never a stale entry.
    own: InvalidatingCache<String, Option<Policy>>,
    metrics: Arc<Metrics>,
}

impl Policies {
    pub fn new(db: Db, metrics: Arc<Metrics>) -> Self {
        Self {
            db,
            tenants: InvalidatingCache::with_idle(10_000, IDLE),
            own: InvalidatingCache::with_idle(100_000, IDLE),
            metrics,
        }
    }

    /// The policy the session's sends are paced by, `None` when nothing paces them.
    pub async fn effective(
        &self,
        tenant: Uuid,
        upstream: &str,
    ) -> Result<Option<Policy>, PacingError> {
        let tenant = self.tenant(tenant).await?;
        let own = self.own(upstream).await?;
        Ok(tenant.effective(own.as_ref()))
    }

    pub async fn tenant(&self, tenant: Uuid) -> Result<TenantPacing, PacingError> {
        let load = async {
            self.metrics.pacing_policy_reads.inc();
            // A tenant gone meanwhile paces nothing: its calls are refused elsewhere.
            store::tenant_pacing(&self.db, tenant)
                .await
                .map(Option::unwrap_or_default)
        };
        self.tenants
            .get_or_load(&tenant, load)
            .await
            .map_err(PacingError::Lookup)
    }

    pub async fn own(&self, upstream: &str) -> Result<Option<Policy>, PacingError> {
        let load = async {
            self.metrics.pacing_policy_reads.inc();
            store::own_policy(&self.db, upstream).await
        };
        self.own
            .get_or_load(upstream, load)
            .await
            .map_err(PacingError::Lookup)
    }

    pub async fn tenant_changed(&self, tenant: Uuid) {
        self.tenants.invalidate(&tenant).await;
    }

    pub async fn session_changed(&self, upstream: &str) {
        self.own.invalidate(upstream).await;
    }

    pub fn forget_everything(&self) {
        self.tenants.invalidate_all();
        self.own.invalidate_all();
    }
}
