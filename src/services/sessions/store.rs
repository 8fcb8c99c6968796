//! Session ownership with its caches: every change goes through here (and `store::sessions`
//! below it), so every replica's caches hear of it.

use super::SessionError;
use crate::db::{ChangeFeed, Db, Signal};
use crate::domain::{Mode, SessionName, UpstreamSession};
use crate::services::cache::InvalidatingCache;
use crate::services::webhooks::listing::SubscriptionLists;
use crate::store::sessions::{self as store, NotRecorded};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Ownership rarely changes; every change is announced on `CHANNEL` so each replica drops
/// what it cached at once, and a short TTL bounds staleness should a notification be lost.
const CACHE_TTL: Duration = Duration::from_secs(30);
/// The channel replicas announce ownership changes on (payload `tenant_id:name`).
pub const CHANNEL: &str = "wagw_sessions";

pub use store::{OwnedSession, TenantSession};

#[derive(Clone)]
pub struct SessionStore {
    pool: Db,
    /// (tenant, mode, name) → upstream session: a test key resolves only test sessions.
    cache: InvalidatingCache<(Uuid, Mode, String), UpstreamSession>,
    /// Each tenant's sessions of one mode, for the list every `GET /v1/sessions` filters the
    /// upstream by.
    lists: InvalidatingCache<(Uuid, Mode), Arc<Vec<OwnedSession>>>,
    /// Forgetting a session deletes its webhook subscriptions: their tenant's list is dropped.
    subscriptions: SubscriptionLists,
}

impl SessionStore {
    pub fn new(pool: Db, subscriptions: SubscriptionLists) -> Self {
        Self {
            pool,
            cache: InvalidatingCache::with_ttl(100_000, CACHE_TTL),
            lists: InvalidatingCache::with_ttl(10_000, CACHE_TTL),
            subscriptions,
        }
    }

    /// The upstream session behind the tenant's name, if the tenant owns one by that name in
    /// `mode`.
    pub async fn resolve(
        &self,
        tenant: Uuid,
        mode: Mode,
        name: &SessionName,
    ) -> Result<Option<UpstreamSession>, SessionError> {
        let key = (tenant, mode, name.as_str().to_owned());
        if let Some(hit) = self.cache.get(&key).await {
            return Ok(Some(hit));
        }
        let since = self.cache.generation();
        // Misses are not cached: a session created a moment later must be usable at once.
        let found = store::upstream_name(&self.pool, tenant, mode, name).await?;
        if let Some(upstream) = &found {
            // A value read across an announced change serves this call and is not kept.
            self.cache
                .insert_read_at(key, upstream.clone(), since)
                .await;
        }
        Ok(found)
    }

    /// Records a new session for the tenant, within its `max_sessions` and the organisation's
    /// plan (`org_max`), counted atomically across replicas.
    pub async fn create(
        &self,
        tenant: Uuid,
        mode: Mode,
        name: &SessionName,
        org_max: Option<u32>,
    ) -> Result<UpstreamSession, SessionError> {
        let upstream = UpstreamSession::generate();
        match store::create(&self.pool, tenant, mode, name, &upstream, org_max).await? {
            Ok(()) => {
                // The tenant's cached list (here and on every replica) lacks the new session.
                self.changed(tenant, name.as_str()).await;
                Ok(upstream)
            }
            Err(NotRecorded::NoTenant) => Err(SessionError::CallerGone),
            Err(NotRecorded::TenantFull { max }) => Err(SessionError::TenantFull(max)),
            Err(NotRecorded::OrganisationFull { max }) => Err(SessionError::OrganisationFull(max)),
        }
    }

    /// Forgets the tenant's session (after the upstream deleted it, or its creation failed).
    pub async fn forget(
        &self,
        tenant: Uuid,
        mode: Mode,
        name: &SessionName,
    ) -> Result<(), SessionError> {
        store::forget(&self.pool, tenant, mode, name).await?;
        self.subscriptions.changed(tenant, mode).await;
        self.changed(tenant, name.as_str()).await;
        Ok(())
    }

    /// Drops the tenant's cached session here, in both modes (the announcement names no
    /// mode: dropping one entry too many costs one read).
    pub async fn invalidate(&self, tenant: Uuid, name: &str) {
        for mode in [Mode::Live, Mode::Test] {
            self.cache
                .invalidate(&(tenant, mode, name.to_owned()))
                .await;
            self.lists.invalidate(&(tenant, mode)).await;
        }
    }

    /// Drops the entry here at once and announces the change to every replica. A lost
    /// announcement is logged, not fatal: the TTL bounds how long another replica may lag.
    async fn changed(&self, tenant: Uuid, name: &str) {
        self.invalidate(tenant, name).await;
        let announced = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{tenant}:{name}"))
            .execute(&self.pool)
            .await;
        if let Err(e) = announced {
            tracing::warn!("announcing a session ownership change: {e}");
        }
    }

    /// Follows every replica's announcements (this one's included) on `feed`.
    pub fn follow(&self, feed: &ChangeFeed) {
        let store = self.clone();
        feed.on(CHANNEL, move |signal| {
            let store = store.clone();
            async move {
                match signal {
                    Signal::Notified(payload) => match payload
                        .split_once(':')
                        .and_then(|(t, n)| Some((t.parse::<Uuid>().ok()?, n)))
                    {
                        Some((tenant, name)) => store.invalidate(tenant, name).await,
                        None => tracing::warn!("ignoring an unknown session change notification"),
                    },
                    Signal::Missed => store.forget_everything(),
                }
            }
        });
    }

    fn forget_everything(&self) {
        self.cache.invalidate_all();
        self.lists.invalidate_all();
    }

    /// Records an upstream session that already exists as the tenant's, under the tenant's
    /// name (an admin adopting a phone that was paired before the gateway).
    pub async fn adopt(
        &self,
        tenant: Uuid,
        name: &SessionName,
        upstream: &UpstreamSession,
    ) -> Result<(), SessionError> {
        store::adopt(&self.pool, tenant, name, upstream).await?;
        // Misses are not cached, but announce anyway: the name may have been cached for an
        // upstream session deleted a moment ago.
        self.changed(tenant, name.as_str()).await;
        Ok(())
    }

    /// Forgets whoever owned the upstream session; returns the owner and its name for it.
    pub async fn forget_upstream(
        &self,
        upstream: &str,
    ) -> Result<Option<(Uuid, String)>, SessionError> {
        let owner = store::forget_upstream(&self.pool, upstream).await?;
        if let Some((tenant, name)) = &owner {
            // The owner's mode is not returned: dropping one list too many costs one read.
            for mode in [Mode::Live, Mode::Test] {
                self.subscriptions.changed(*tenant, mode).await;
            }
            self.changed(*tenant, name).await;
        }
        Ok(owner)
    }

    /// Every owned session, with its tenant.
    pub async fn list_all(&self) -> Result<Vec<TenantSession>, SessionError> {
        Ok(store::list_all(&self.pool).await?)
    }

    /// Every session the tenant owns in `mode` (cached; concurrent misses share one read).
    pub async fn list(
        &self,
        tenant: Uuid,
        mode: Mode,
    ) -> Result<Arc<Vec<OwnedSession>>, SessionError> {
        let read = async { store::list(&self.pool, tenant, mode).await.map(Arc::new) };
        // A list read across an announced change serves this call and is not kept.
        self.lists
            .get_or_load(&(tenant, mode), read)
            .await
            .map_err(SessionError::Lookup)
    }
}
