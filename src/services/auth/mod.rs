//! Who may call what: tenant keys on `/v1`, admin tokens on `/admin/v1`.
//!
//! Two caches keep the hot path off argon2id and off the database:
//! - `proven`: SHA-256 fingerprints of whole keys that argon2id accepted. A key's secret never
//!   changes, so a proof stands until the key is revoked or deleted; it is computed once per
//!   key per replica, and concurrent first calls with the same key wait for that one check.
//! - `records`: what a key may do and whose it is (scopes, sessions, expiry, the tenant's plan
//!   and status): one cheap read, refreshed every `RECORD_TTL`, concurrent misses coalesced.
//!
//! Cold checks are bounded three ways: a failure count per (key id, client address) reserved
//! before argon2id runs, one check in flight per key id, and a bounded queue for argon2id
//! (503 when full). Unknown key ids are remembered briefly, so a flood of made-up ids costs
//! one look-up each at most. Every authenticated call then passes a per-key request limiter.
//!
//! Every change that must take effect at once (revocation, suspension, scope or quota change,
//! tenant or admin deletion) is announced with `NOTIFY wagw_auth`, and every replica drops what
//! it cached; the TTL only bounds staleness should a notification be lost.

pub mod admin;
pub mod bootstrap;
pub mod client;
pub mod jwt;
pub mod password;
pub mod throttle;

use crate::domain::{Scope, Scopes};
pub use admin::AdminCaller;

use crate::config::AdminConfig;
use crate::db::Db;
use crate::http::error::ApiError;
use actix_web::http::header::HeaderName;
use actix_web::{dev::Payload, web, FromRequest, HttpMessage, HttpRequest};
use chrono::{DateTime, Utc};
use futures_util::future::LocalBoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, RateLimiter};
use ipnet::IpNet;
use jwt::JwtKeys;
use moka::future::Cache;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use throttle::{FailureLimiter, InFlight, Reservation};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// The one answer for every key that does not authenticate, whatever the reason.
pub const INVALID_KEY: &str = "invalid API key";
/// The channel replicas announce auth changes on.
pub const CHANNEL: &str = "wagw_auth";
/// Safety net should a notification be lost; notifications do the real work.
const RECORD_TTL: Duration = Duration::from_secs(30);
/// A proof unused this long is dropped (it is recomputed, once, on the next call).
const PROOF_IDLE: Duration = Duration::from_secs(3600);
/// `last_used_at` is written at most this often per key and replica.
const LAST_USED_PRECISION: Duration = Duration::from_secs(60);
const ADMIN_CACHE_TTL: Duration = Duration::from_secs(10);
/// How long a key id found not to exist is answered 401 without a look-up.
const UNKNOWN_ID_TTL: Duration = Duration::from_secs(30);
/// The per-key request limit is this many times the tenant's own rate limit: room for the
/// uncounted calls (status, usage, webhooks) around the counted ones.
const KEY_RPS_FACTOR: u32 = 5;

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
        let client = client::client_addr(req).map(|a| a.to_string());
        let req = req.clone();
        Box::pin(async move {
            let auth = auth.ok_or_else(|| ApiError::internal(anyhow::anyhow!("Auth not wired")))?;
            let key = key.ok_or_else(|| ApiError::unauthorized(INVALID_KEY))?;
            let caller = auth
                .authenticate_key(&key, client.as_deref().unwrap_or_default())
                .await?;
            auth.admit_request(&caller)?;
            if caller.tenant.suspended {
                return Err(ApiError::forbidden("this tenant is suspended"));
            }
            // For `http::quota_headers`, which stamps every answer to an authenticated caller.
            req.extensions_mut().insert(caller.clone());
            Ok(caller)
        })
    }
}

/// Shared authentication state: built once, cloned into every worker.
pub struct Auth {
    pool: Db,
    pub jwt: JwtKeys,
    /// Fingerprint of a whole key → the id of the key argon2id accepted it for.
    proven: Cache<[u8; 32], String>,
    /// Key id → the key's record.
    records: Cache<String, Arc<KeyRecord>>,
    /// Keys whose `last_used_at` this replica wrote recently.
    touched: Cache<String, ()>,
    admins: Cache<Uuid, AdminRecord>,
    /// Key ids that did not exist a moment ago.
    unknown_ids: Cache<String, ()>,
    /// Bumped on every notification, so a look-up that raced a change is not cached.
    generation: AtomicU64,
    /// Wrong secrets per (key id, client address).
    key_failures: FailureLimiter,
    /// Failed logins per (username, client address): refuses that pair only.
    pub login_by_user: FailureLimiter,
    /// Failed logins per client address: slows that address, never refuses it.
    pub login_by_addr: FailureLimiter,
    /// One credential check at a time per key id or username.
    pub in_flight: InFlight,
    /// Permits for argon2id checks running or waiting: a burst beyond them answers 503.
    checks: Arc<Semaphore>,
    pub trusted_proxies: Vec<IpNet>,
    /// (key id, requests per second) → that key's request limiter.
    key_rates: moka::sync::Cache<(String, u32), Arc<DefaultDirectRateLimiter>>,
    key_rps_min: u32,
    key_rps_default: u32,
}

/// What an admin's token is checked against.
#[derive(Clone, Debug)]
pub struct AdminRecord {
    pub username: String,
    /// Bumped by a password change: tokens carrying an older version are refused.
    pub token_version: i32,
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
    pub async fn new(pool: Db, config: &AdminConfig) -> anyhow::Result<Self> {
        let jwt = JwtKeys::load(
            &pool,
            config.jwt_secret.as_ref(),
            config.jwt_ttl,
            &config.jwt_issuer,
        )
        .await?;
        Ok(Self {
            pool: pool.clone(),
            jwt,
            proven: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(PROOF_IDLE)
                .support_invalidation_closures()
                .build(),
            records: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(RECORD_TTL)
                .support_invalidation_closures()
                .build(),
            touched: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(LAST_USED_PRECISION)
                .build(),
            admins: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ADMIN_CACHE_TTL)
                .build(),
            unknown_ids: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(UNKNOWN_ID_TTL)
                .build(),
            generation: AtomicU64::new(0),
            key_failures: FailureLimiter::new(
                pool.clone(),
                "key_client",
                10,
                Duration::from_secs(60),
            ),
            login_by_user: FailureLimiter::new(
                pool.clone(),
                "login_client",
                10,
                Duration::from_secs(300),
            ),
            login_by_addr: FailureLimiter::new(
                pool.clone(),
                "login_addr",
                30,
                Duration::from_secs(300),
            ),
            in_flight: InFlight::default(),
            checks: Arc::new(Semaphore::new(config.auth_queue.max(1))),
            trusted_proxies: config.trusted_proxies.clone(),
            key_rates: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(60))
                .build(),
            key_rps_min: config.key_rps_min,
            key_rps_default: config.key_rps_default,
        })
    }

    /// One argon2id check, if the queue has room; else 503 with Retry-After.
    pub async fn verify_secret(
        &self,
        secret: String,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        let Ok(_permit) = self.checks.clone().try_acquire_owned() else {
            return Err(ApiError::service_unavailable(
                "too many credential checks are waiting; retry shortly",
            )
            .with_retry_after(1));
        };
        Ok(password::verify(secret, hash).await?)
    }

    /// The per-key request limiter: 429 once the key sends faster than its share.
    pub fn admit_request(&self, caller: &TenantCaller) -> Result<(), ApiError> {
        let per_second = match caller.tenant.quota.requests_per_second {
            Some(rps) => u32::try_from(rps)
                .unwrap_or(0)
                .saturating_mul(KEY_RPS_FACTOR)
                .max(self.key_rps_min),
            None => self.key_rps_default,
        };
        let quota =
            governor::Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN));
        let limiter = self
            .key_rates
            .get_with((caller.key.id.clone(), per_second), || {
                Arc::new(RateLimiter::direct(quota))
            });
        limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::too_many_requests(
                "too many requests with this API key; slow down",
                wait.as_secs_f64().ceil() as u64,
            )
        })
    }

    /// Verifies a presented key from `client`: from the caches when warm, else one database
    /// read and one argon2id check. Every refusal is the same 401, except a (key id, client)
    /// pair that used up its failures (429, argon2id not run) and a full queue (503).
    pub async fn authenticate_key(
        &self,
        raw: &str,
        client: &str,
    ) -> Result<TenantCaller, ApiError> {
        let parsed = crate::domain::api_key::parse(raw).ok_or_else(invalid_key)?;
        if self.unknown_ids.contains_key(parsed.id) {
            return Err(invalid_key());
        }
        let fingerprint = crate::domain::api_key::fingerprint(raw);
        let generation = self.generation.load(Ordering::SeqCst);
        let record = self.key_record(parsed.id).await?;
        // Revoked and expired keys are refused before argon2id runs.
        if !still_valid(&record.caller.key) {
            return Err(invalid_key());
        }
        if !self.proven.contains_key(&fingerprint) {
            self.prove(&parsed, fingerprint, &record, client).await?;
        }
        if self.generation.load(Ordering::SeqCst) != generation {
            // A change was announced while we read: serve this call, but keep nothing.
            self.records.invalidate(parsed.id).await;
            self.proven.invalidate(&fingerprint).await;
        }
        self.touch(&record.caller.key.id).await;
        Ok(record.caller.clone())
    }

    /// The key's record; a key id that does not exist is remembered (and nothing counted:
    /// a random id cannot be guessed, so its failures protect nothing).
    async fn key_record(&self, id: &str) -> Result<Arc<KeyRecord>, ApiError> {
        match self
            .records
            .try_get_with_by_ref(id, self.load_record(id))
            .await
        {
            Ok(record) => Ok(record),
            Err(e) => match &*e {
                LoadError::Missing => {
                    self.unknown_ids.insert(id.to_owned(), ()).await;
                    Err(invalid_key())
                }
                LoadError::Database(e) => Err(e.clone().into()),
            },
        }
    }

    /// Checks the secret with argon2id once per key and replica: the attempt is reserved for
    /// (key id, client) first, and concurrent checks of one key id take turns, so a waiter
    /// whose very key was proven meanwhile needs no check of its own.
    async fn prove(
        &self,
        parsed: &crate::domain::api_key::ParsedKey<'_>,
        fingerprint: [u8; 32],
        record: &KeyRecord,
        client: &str,
    ) -> Result<(), ApiError> {
        let subject = throttle::pair(parsed.id, client);
        if let Reservation::Refused { retry_after } = self.key_failures.reserve(&subject).await? {
            return Err(ApiError::too_many_requests(
                "too many failed attempts with this API key; retry later",
                retry_after,
            ));
        }
        let _turn = self.in_flight.turn(&format!("key {}", parsed.id)).await;
        let verified = if self.proven.contains_key(&fingerprint) {
            Ok(true)
        } else {
            let secret = parsed.secret.to_owned();
            self.verify_secret(secret, Some(record.secret_hash.clone()))
                .await
        };
        match verified {
            Ok(true) => {
                let id = record.caller.key.id.clone();
                self.proven.insert(fingerprint, id).await;
                self.key_failures.reset(&subject).await?;
                Ok(())
            }
            // The reserved attempt stays counted as the failure it was.
            Ok(false) => Err(invalid_key()),
            Err(e) => {
                self.key_failures.release(&subject).await?;
                Err(e)
            }
        }
    }

    async fn load_record(&self, id: &str) -> Result<Arc<KeyRecord>, LoadError> {
        let row: Option<KeyRow> = sqlx::query_as(
            "SELECT k.id, k.name, k.secret_hash, k.scopes, k.sessions, k.expires_at, k.revoked_at,
                    t.id AS tenant_id, t.name AS tenant_name, t.plan, t.monthly_requests,
                    t.requests_per_second, t.max_sessions, t.status
             FROM tenant_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| LoadError::Database(Arc::new(e)))?;
        let row = row.ok_or(LoadError::Missing)?;
        Ok(Arc::new(KeyRecord {
            caller: row.to_caller(),
            secret_hash: row.secret_hash,
        }))
    }

    /// Records the key's use, at most once per `LAST_USED_PRECISION`, off the request's path.
    async fn touch(&self, key_id: &str) {
        if self.touched.contains_key(key_id) {
            return;
        }
        self.touched.insert(key_id.to_owned(), ()).await;
        let pool = self.pool.clone();
        let key_id = key_id.to_owned();
        tokio::spawn(async move {
            let _ = sqlx::query("UPDATE tenant_keys SET last_used_at = now() WHERE id = $1")
                .bind(key_id)
                .execute(&pool)
                .await;
        });
    }

    /// The admin if it still exists (briefly cached; deletions and password changes notify).
    pub async fn admin_record(&self, id: Uuid) -> Result<Option<AdminRecord>, ApiError> {
        if let Some(admin) = self.admins.get(&id).await {
            return Ok(Some(admin));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let row: Option<(String, i32)> =
            sqlx::query_as("SELECT username, token_version FROM admins WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let admin = row.map(|(username, token_version)| AdminRecord {
            username,
            token_version,
        });
        // A record that raced an announced change is used once, not kept.
        if let Some(admin) = admin.as_ref() {
            if self.generation.load(Ordering::SeqCst) == generation {
                self.admins.insert(id, admin.clone()).await;
            }
        }
        Ok(admin)
    }

    /// Drops whatever an announcement makes stale on this replica.
    pub async fn apply(&self, change: &Change) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let dropped = match change {
            Change::Key(id) => {
                self.records.invalidate(id).await;
                self.unknown_ids.invalidate(id).await;
                let id = id.clone();
                self.proven
                    .invalidate_entries_if(move |_, key| *key == id)
                    .map(|_| ())
            }
            Change::Tenant(id) => {
                let id = *id;
                self.records
                    .invalidate_entries_if(move |_, r| r.caller.tenant.id == id)
                    .map(|_| ())
            }
            Change::Admin(id) => {
                self.admins.invalidate(id).await;
                Ok(())
            }
        };
        if dropped.is_err() {
            self.forget_keys();
        }
        // Apply the predicates now: pending predicates are evaluated on every read until then.
        self.records.run_pending_tasks().await;
        self.proven.run_pending_tasks().await;
    }

    /// Purges ended failure windows every few minutes until aborted (any replica may).
    pub fn spawn_failure_purge(&self) -> tokio::task::JoinHandle<()> {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(300));
            loop {
                tick.tick().await;
                if let Err(e) = throttle::purge_expired(&pool).await {
                    tracing::warn!("purging ended failure windows: {e}");
                }
            }
        })
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
                auth.forget_keys();
                auth.admins.invalidate_all();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }

    async fn listen(&self) -> anyhow::Result<()> {
        let mut listener = self.pool.listener().await?;
        listener.listen(CHANNEL).await?;
        self.forget_keys();
        loop {
            match listener.try_recv().await? {
                Some(note) => match Change::parse(note.payload()) {
                    Some(change) => self.apply(&change).await,
                    None => tracing::warn!("ignoring an unknown auth change notification"),
                },
                // The connection dropped (the listener reconnects on the next call):
                // announcements may have been missed meanwhile.
                None => {
                    self.forget_keys();
                    self.admins.invalidate_all();
                }
            }
        }
    }
}

impl Auth {
    /// Drops every cached key record and proof (a notification may have been missed).
    fn forget_keys(&self) {
        self.records.invalidate_all();
        self.proven.invalidate_all();
    }
}

/// A key as stored: what it may do, and the hash its secret is checked against.
struct KeyRecord {
    caller: TenantCaller,
    secret_hash: String,
}

enum LoadError {
    Missing,
    Database(Arc<sqlx::Error>),
}

fn invalid_key() -> ApiError {
    ApiError::unauthorized(INVALID_KEY)
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
