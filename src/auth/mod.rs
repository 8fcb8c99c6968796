//! Who may call what: tenant keys on `/v1`, admin tokens on `/admin/v1`.
//!
//! A tenant key is checked once per cache lifetime with argon2id; the verified key then lives
//! in a moka cache keyed by a SHA-256 fingerprint of the whole key, so a warm call costs
//! microseconds. Every change that must take effect at once (revocation, suspension, scope or
//! quota change, tenant or admin deletion) is announced with `NOTIFY wagw_auth`, and every
//! replica drops what it cached; a short TTL bounds staleness should a notification be lost.

pub mod admin;
pub mod bootstrap;
pub mod jwt;
pub mod password;
pub mod scope;
pub mod tenant_key;
pub mod throttle;

pub use admin::AdminCaller;
pub use scope::{Scope, Scopes};

use crate::config::AdminConfig;
use crate::error::ApiError;
use actix_web::http::header::HeaderName;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use chrono::{DateTime, Utc};
use futures_util::future::LocalBoxFuture;
use jwt::JwtKeys;
use moka::future::Cache;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use throttle::FailureLimiter;
use uuid::Uuid;

/// The one answer for every key that does not authenticate, whatever the reason.
pub const INVALID_KEY: &str = "invalid API key";
/// The channel replicas announce auth changes on.
pub const CHANNEL: &str = "wagw_auth";
/// Safety net should a notification be lost; notifications do the real work.
const KEY_CACHE_TTL: Duration = Duration::from_secs(5);
const ADMIN_CACHE_TTL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Quota {
    pub monthly_requests: Option<i64>,
    pub requests_per_second: Option<i32>,
    pub max_sessions: Option<i32>,
}

#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub quota: Quota,
    pub plan: String,
    pub suspended: bool,
}

#[derive(Clone, Debug)]
pub struct TenantKeyInfo {
    pub id: String,
    pub name: String,
    pub sessions: Option<Vec<String>>,
    pub scopes: Scopes,
    /// The earlier of expiry and (grace-delayed) revocation.
    pub valid_until: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct TenantCaller {
    pub tenant: Arc<Tenant>,
    pub key: Arc<TenantKeyInfo>,
}

impl TenantCaller {
    /// 403 naming the scope when the key lacks it.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.key.scopes.admits(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this API key lacks the `{}` scope",
                scope.as_str()
            )))
        }
    }

    pub fn may_use_session(&self, name: &str) -> bool {
        self.key
            .sessions
            .as_ref()
            .is_none_or(|s| s.iter().any(|n| n == name))
    }
}

/// The key headers a client of the hosted API may already send, in order of preference.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const X_RAPIDAPI_KEY: HeaderName = HeaderName::from_static("x-rapidapi-key");

fn presented_key(req: &HttpRequest) -> Option<String> {
    if let Some(token) = admin::bearer(req) {
        return Some(token.to_owned());
    }
    [X_API_KEY, X_RAPIDAPI_KEY].iter().find_map(|name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
    })
}

impl FromRequest for TenantCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = req.app_data::<web::Data<Auth>>().cloned();
        let key = presented_key(req);
        Box::pin(async move {
            let auth = auth.ok_or_else(|| ApiError::internal(anyhow::anyhow!("Auth not wired")))?;
            let key = key.ok_or_else(|| ApiError::unauthorized(INVALID_KEY))?;
            let caller = auth.authenticate_key(&key).await?;
            if caller.tenant.suspended {
                return Err(ApiError::forbidden("this tenant is suspended"));
            }
            Ok(caller)
        })
    }
}

/// Shared authentication state: built once, cloned into every worker.
pub struct Auth {
    pool: PgPool,
    pub jwt: JwtKeys,
    keys: Cache<[u8; 32], TenantCaller>,
    admins: Cache<Uuid, String>,
    /// Bumped on every notification, so a look-up that raced a change is not cached.
    generation: AtomicU64,
    key_failures: FailureLimiter,
    pub login_by_user: FailureLimiter,
    pub login_by_addr: FailureLimiter,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    secret_hash: String,
    scopes: Vec<String>,
    sessions: Option<Vec<String>>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    tenant_id: Uuid,
    tenant_name: String,
    plan: String,
    monthly_requests: Option<i64>,
    requests_per_second: Option<i32>,
    max_sessions: Option<i32>,
    status: String,
}

impl Auth {
    pub async fn new(pool: PgPool, config: &AdminConfig) -> anyhow::Result<Self> {
        let jwt = JwtKeys::load(&pool, config.jwt_secret.as_ref(), config.jwt_ttl).await?;
        Ok(Self {
            pool,
            jwt,
            keys: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KEY_CACHE_TTL)
                .support_invalidation_closures()
                .build(),
            admins: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ADMIN_CACHE_TTL)
                .build(),
            generation: AtomicU64::new(0),
            key_failures: FailureLimiter::new(10, Duration::from_secs(60)),
            login_by_user: FailureLimiter::new(10, Duration::from_secs(300)),
            login_by_addr: FailureLimiter::new(30, Duration::from_secs(300)),
        })
    }

    /// Verifies a presented key: from the cache when warm, else one database read and one
    /// argon2id check. Every refusal is the same 401, except a key id under a guessing
    /// attack, which gets 429 without the database or argon2id being touched.
    pub async fn authenticate_key(&self, raw: &str) -> Result<TenantCaller, ApiError> {
        let unauthorized = || ApiError::unauthorized(INVALID_KEY);
        let parsed = tenant_key::parse(raw).ok_or_else(unauthorized)?;
        let fingerprint = tenant_key::fingerprint(raw);
        if let Some(hit) = self.keys.get(&fingerprint).await {
            if still_valid(&hit.key) {
                return Ok(hit);
            }
            self.keys.invalidate(&fingerprint).await;
            return Err(unauthorized());
        }
        if self.key_failures.is_limited(parsed.id) {
            return Err(ApiError::too_many_requests(
                "too many failed attempts with this API key; retry later",
                self.key_failures.window.as_secs(),
            ));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let row: Option<KeyRow> = sqlx::query_as(
            "SELECT k.id, k.name, k.secret_hash, k.scopes, k.sessions, k.expires_at, k.revoked_at,
                    t.id AS tenant_id, t.name AS tenant_name, t.plan, t.monthly_requests,
                    t.requests_per_second, t.max_sessions, t.status
             FROM tenant_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.id = $1",
        )
        .bind(parsed.id)
        .fetch_optional(&self.pool)
        .await?;
        // Unknown, revoked and expired keys are refused before argon2id runs.
        let Some(row) = row else {
            self.key_failures.record_failure(parsed.id);
            return Err(unauthorized());
        };
        let caller = row.to_caller();
        if !still_valid(&caller.key) {
            return Err(unauthorized());
        }
        let matches = password::verify(parsed.secret.to_owned(), Some(row.secret_hash))
            .await
            .map_err(ApiError::internal)?;
        if !matches {
            self.key_failures.record_failure(parsed.id);
            return Err(unauthorized());
        }
        self.keys.insert(fingerprint, caller.clone()).await;
        if self.generation.load(Ordering::SeqCst) != generation {
            // A change was announced while we read: serve this call, but do not keep it.
            self.keys.invalidate(&fingerprint).await;
        }
        // Recorded once per cache lifetime, not per call, to keep the hot path read-only.
        let pool = self.pool.clone();
        let key_id = caller.key.id.clone();
        tokio::spawn(async move {
            let _ = sqlx::query("UPDATE tenant_keys SET last_used_at = now() WHERE id = $1")
                .bind(key_id)
                .execute(&pool)
                .await;
        });
        Ok(caller)
    }

    /// The admin's username if the admin still exists (briefly cached; deletions notify).
    pub async fn admin_username(&self, id: Uuid) -> Result<Option<String>, ApiError> {
        if let Some(name) = self.admins.get(&id).await {
            return Ok(Some(name));
        }
        let name: Option<String> = sqlx::query_scalar("SELECT username FROM admins WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(name) = &name {
            self.admins.insert(id, name.clone()).await;
        }
        Ok(name)
    }

    /// Drops whatever an announcement makes stale on this replica.
    pub async fn apply(&self, change: &Change) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let dropped = match change {
            Change::Key(id) => {
                let id = id.clone();
                self.keys
                    .invalidate_entries_if(move |_, c| c.key.id == id)
                    .map(|_| ())
            }
            Change::Tenant(id) => {
                let id = *id;
                self.keys
                    .invalidate_entries_if(move |_, c| c.tenant.id == id)
                    .map(|_| ())
            }
            Change::Admin(id) => {
                self.admins.invalidate(id).await;
                Ok(())
            }
        };
        if dropped.is_err() {
            self.keys.invalidate_all();
        }
        // Apply the predicate now: pending predicates are evaluated on every read until then.
        self.keys.run_pending_tasks().await;
    }

    /// Listens for announcements from every replica (this one included) until aborted.
    pub fn spawn_listener(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let auth = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = auth.listen().await {
                    tracing::warn!("auth change listener failed, reconnecting: {e:#}");
                }
                // Anything may have changed while we were not listening.
                auth.keys.invalidate_all();
                auth.admins.invalidate_all();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }

    async fn listen(&self) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        self.keys.invalidate_all();
        loop {
            match listener.try_recv().await? {
                Some(note) => match Change::parse(note.payload()) {
                    Some(change) => self.apply(&change).await,
                    None => tracing::warn!("ignoring an unknown auth change notification"),
                },
                // The connection dropped (the listener reconnects on the next call):
                // announcements may have been missed meanwhile.
                None => {
                    self.keys.invalidate_all();
                    self.admins.invalidate_all();
                }
            }
        }
    }
}

fn still_valid(key: &TenantKeyInfo) -> bool {
    key.valid_until.is_none_or(|until| until > Utc::now())
}

impl KeyRow {
    fn to_caller(&self) -> TenantCaller {
        let valid_until = match (self.expires_at, self.revoked_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        TenantCaller {
            tenant: Arc::new(Tenant {
                id: self.tenant_id,
                name: self.tenant_name.clone(),
                quota: Quota {
                    monthly_requests: self.monthly_requests,
                    requests_per_second: self.requests_per_second,
                    max_sessions: self.max_sessions,
                },
                plan: self.plan.clone(),
                suspended: self.status == "suspended",
            }),
            key: Arc::new(TenantKeyInfo {
                id: self.id.clone(),
                name: self.name.clone(),
                sessions: self.sessions.clone(),
                scopes: Scopes::from_stored(&self.scopes),
                valid_until,
            }),
        }
    }
}

/// What an announcement says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Key(String),
    Tenant(Uuid),
    Admin(Uuid),
}

impl Change {
    pub fn payload(&self) -> String {
        match self {
            Change::Key(id) => format!("key:{id}"),
            Change::Tenant(id) => format!("tenant:{id}"),
            Change::Admin(id) => format!("admin:{id}"),
        }
    }

    fn parse(payload: &str) -> Option<Self> {
        let (kind, id) = payload.split_once(':')?;
        match kind {
            "key" => Some(Change::Key(id.to_owned())),
            "tenant" => id.parse().ok().map(Change::Tenant),
            "admin" => id.parse().ok().map(Change::Admin),
            _ => None,
        }
    }

    /// Announces the change; inside a transaction it is delivered on commit.
    pub async fn announce<'e, E>(&self, executor: E) -> Result<(), sqlx::Error>
    where
        E: sqlx::PgExecutor<'e>,
    {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(self.payload())
            .execute(executor)
            .await
            .map(|_| ())
    }
}
