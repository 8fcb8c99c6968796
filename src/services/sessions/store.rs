//! The one place the `sessions` table is written.

use crate::db::constraint_violated;
use crate::db::Db;
use crate::db::{ChangeFeed, Signal};
use crate::domain::{SessionName, UpstreamSession};
use crate::http::error::ApiError;
use crate::services::cache::InvalidatingCache;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Ownership rarely changes; every change is announced on `CHANNEL` so each replica drops
/// what it cached at once, and a short TTL bounds staleness should a notification be lost.
const CACHE_TTL: Duration = Duration::from_secs(30);
/// The channel replicas announce ownership changes on (payload `tenant_id:name`).
pub const CHANNEL: &str = "wagw_sessions";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OwnedSession {
    pub name: String,
    pub upstream_name: String,
}

/// An owned session with its tenant, as admins see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantSession {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub name: String,
    pub upstream_name: String,
}

#[derive(Clone)]
pub struct SessionStore {
    pool: Db,
    cache: InvalidatingCache<(Uuid, String), UpstreamSession>,
    /// Each tenant's sessions, for the list every `GET /v1/sessions` filters the upstream by.
    lists: InvalidatingCache<Uuid, Arc<Vec<OwnedSession>>>,
}

impl SessionStore {
    pub fn new(pool: Db) -> Self {
        Self {
            pool,
            cache: InvalidatingCache::with_ttl(100_000, CACHE_TTL),
            lists: InvalidatingCache::with_ttl(10_000, CACHE_TTL),
        }
    }

    /// The upstream session behind the tenant's name, if the tenant owns one by that name.
    pub async fn resolve(
        &self,
        tenant: Uuid,
        name: &SessionName,
    ) -> Result<Option<UpstreamSession>, ApiError> {
        let key = (tenant, name.as_str().to_owned());
        if let Some(hit) = self.cache.get(&key).await {
            return Ok(Some(hit));
        }
        let since = self.cache.generation();
        let found: Option<String> = sqlx::query_scalar(
            "SELECT upstream_name FROM sessions WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant)
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        // Misses are not cached: a session created a moment later must be usable at once.
        let found = found.map(UpstreamSession::from_db);
        if let Some(upstream) = &found {
            self.cache
                .insert_read_at(key, upstream.clone(), since)
                .await;
        }
        Ok(found)
    }

    /// Records a new session for the tenant, within its `max_sessions` and the organisation's
    /// plan (`org_max`), atomically: the tenant's row (and, with a plan limit, a global
    /// advisory lock) is held so concurrent creations on any replica are counted one by one.
    pub async fn create(
        &self,
        tenant: Uuid,
        name: &SessionName,
        org_max: Option<u32>,
    ) -> Result<UpstreamSession, ApiError> {
        let mut tx = self.pool.begin().await?;
        let max_sessions: Option<Option<i32>> =
            sqlx::query_scalar("SELECT max_sessions FROM tenants WHERE id = $1 FOR UPDATE")
                .bind(tenant)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(max_sessions) = max_sessions else {
            return Err(ApiError::unauthorized("invalid API key"));
        };
        if let Some(max) = max_sessions {
            let owned: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sessions WHERE tenant_id = $1")
                    .bind(tenant)
                    .fetch_one(&mut *tx)
                    .await?;
            if owned >= i64::from(max) {
                return Err(ApiError::too_many_requests(
                    format!("session limit reached: your quota allows {max} session(s); delete one first"),
                    // Not time-bound: a slot frees when a session is deleted.
                    60,
                ));
            }
        }
        if let Some(max) = org_max {
            // Always after the tenant's row lock: one order, no deadlock.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('wagw.sessions'))")
                .execute(&mut *tx)
                .await?;
            let all: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
                .fetch_one(&mut *tx)
                .await?;
            if all >= i64::from(max) {
                return Err(ApiError::too_many_requests(
                    format!("the organisation's upstream plan allows {max} session(s), all in use"),
                    60,
                ));
            }
        }
        let upstream = UpstreamSession::generate();
        let inserted = sqlx::query(
            "INSERT INTO sessions (id, tenant_id, name, upstream_name) VALUES ($1, $2, $3, $4)",
        )
        .bind(Uuid::now_v7())
        .bind(tenant)
        .bind(name.as_str())
        .bind(upstream.as_str())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if constraint_violated(&e, "sessions_tenant_name_key") => {
                return Err(ApiError::conflict(format!(
                    "session `{name}` already exists"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(upstream)
    }

    /// Forgets the tenant's session (after the upstream deleted it, or its creation failed).
    pub async fn forget(&self, tenant: Uuid, name: &SessionName) -> Result<(), ApiError> {
        // Its relayed subscriptions go with it: a new session of the same name starts clean.
        sqlx::query(
            "WITH gone AS (DELETE FROM sessions WHERE tenant_id = $1 AND name = $2 RETURNING 1)
             DELETE FROM webhook_subscriptions
              WHERE tenant_id = $1 AND session_name = $2 AND EXISTS (SELECT 1 FROM gone)",
        )
        .bind(tenant)
        .bind(name.as_str())
        .execute(&self.pool)
        .await?;
        self.changed(tenant, name.as_str()).await;
        Ok(())
    }

    /// Drops the tenant's cached session here.
    pub async fn invalidate(&self, tenant: Uuid, name: &str) {
        self.cache.invalidate(&(tenant, name.to_owned())).await;
        self.lists.invalidate(&tenant).await;
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
    ) -> Result<(), ApiError> {
        let inserted = sqlx::query(
            "INSERT INTO sessions (id, tenant_id, name, upstream_name) VALUES ($1, $2, $3, $4)",
        )
        .bind(Uuid::now_v7())
        .bind(tenant)
        .bind(name.as_str())
        .bind(upstream.as_str())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => {
                // Misses are not cached, but announce anyway: the name may have been cached
                // for an upstream session deleted a moment ago.
                self.changed(tenant, name.as_str()).await;
                Ok(())
            }
            Err(e) if constraint_violated(&e, "sessions_tenant_name_key") => Err(
                ApiError::conflict(format!("the tenant already has a session `{name}`")),
            ),
            Err(e) if constraint_violated(&e, "sessions_upstream_name_key") => {
                Err(ApiError::conflict(format!(
                    "upstream session `{}` is already owned",
                    upstream.as_str()
                )))
            }
            Err(e) if constraint_violated(&e, "sessions_tenant_id_fkey") => {
                Err(ApiError::not_found("no such tenant"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets whoever owned the upstream session; returns the owner and its name for it.
    pub async fn forget_upstream(
        &self,
        upstream: &str,
    ) -> Result<Option<(Uuid, String)>, ApiError> {
        let owner: Option<(Uuid, String)> = sqlx::query_as(
            "WITH gone AS (DELETE FROM sessions WHERE upstream_name = $1 RETURNING tenant_id, name),
                  subscriptions AS (
                    DELETE FROM webhook_subscriptions w USING gone
                     WHERE w.tenant_id = gone.tenant_id AND w.session_name = gone.name)
             SELECT tenant_id, name FROM gone",
        )
        .bind(upstream)
        .fetch_optional(&self.pool)
        .await?;
        if let Some((tenant, name)) = &owner {
            self.changed(*tenant, name).await;
        }
        Ok(owner)
    }

    /// Every owned session, with its tenant.
    pub async fn list_all(&self) -> Result<Vec<TenantSession>, ApiError> {
        Ok(sqlx::query_as(
            "SELECT s.tenant_id, t.name AS tenant_name, s.name, s.upstream_name
               FROM sessions s JOIN tenants t ON t.id = s.tenant_id
              ORDER BY t.name, s.name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every session the tenant owns (cached; concurrent misses share one read).
    pub async fn list(&self, tenant: Uuid) -> Result<Arc<Vec<OwnedSession>>, ApiError> {
        let read = async {
            sqlx::query_as(
                "SELECT name, upstream_name FROM sessions WHERE tenant_id = $1 ORDER BY name",
            )
            .bind(tenant)
            .fetch_all(&self.pool)
            .await
            .map(Arc::new)
        };
        // A list read across an announced change serves this call and is not kept.
        Ok(self.lists.get_or_load(&tenant, read).await?)
    }
}
