//! The one place the `sessions` table is written.

use super::{SessionName, UpstreamSession};
use crate::db::constraint_violated;
use crate::error::ApiError;
use moka::future::Cache;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// Ownership rarely changes; a short TTL bounds staleness on other replicas, and deletions
/// are also announced (see `crate::invalidation`).
const CACHE_TTL: Duration = Duration::from_secs(30);

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
    pool: PgPool,
    cache: Cache<(Uuid, String), UpstreamSession>,
}

impl SessionStore {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
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
            self.cache.insert(key, upstream.clone()).await;
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
        sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        self.invalidate(tenant, name.as_str()).await;
        Ok(())
    }

    pub async fn invalidate(&self, tenant: Uuid, name: &str) {
        self.cache.invalidate(&(tenant, name.to_owned())).await;
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
            Ok(_) => Ok(()),
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
            "DELETE FROM sessions WHERE upstream_name = $1 RETURNING tenant_id, name",
        )
        .bind(upstream)
        .fetch_optional(&self.pool)
        .await?;
        if let Some((tenant, name)) = &owner {
            self.invalidate(*tenant, name).await;
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

    /// Every session the tenant owns.
    pub async fn list(&self, tenant: Uuid) -> Result<Vec<OwnedSession>, ApiError> {
        Ok(sqlx::query_as(
            "SELECT name, upstream_name FROM sessions WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }
}
