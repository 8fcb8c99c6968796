//! Who may call what: tenant keys on `/v1`, admin tokens on `/admin/v1`. The service only:
//! the extractors that read credentials off requests are in `http::extract`.
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
//! (`Busy` when full). Unknown key ids are remembered briefly, so a flood of made-up ids costs
//! one look-up each at most. Every authenticated call then passes a per-key request limiter.
//!
//! Every change that must take effect at once (revocation, suspension, scope or quota change,
//! tenant or admin deletion) is announced with `NOTIFY wagw_auth`, and every replica drops what
//! it cached (`follow`); the TTL only bounds staleness should a notification be lost.

pub mod bootstrap;
mod error;
pub mod jwt;
mod keys;
mod login;
pub mod password;
pub mod throttle;

pub use error::{AuthError, Throttle};
pub use keys::{Authenticated, TenantKeyInfo};
pub use login::LoginGrant;

use crate::config::AdminConfig;
use crate::db::{ChangeFeed, Db, Signal};
pub use crate::domain::tenant::{Quota, Tenant};
use crate::services::cache::InvalidatingCache;
use governor::DefaultDirectRateLimiter;
use ipnet::IpNet;
use jwt::JwtKeys;
use keys::KeyRecord;
use moka::future::Cache;
use std::sync::Arc;
use std::time::Duration;
use throttle::{FailureLimiter, InFlight};
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
/// How long a key id found not to exist is refused without a look-up.
const UNKNOWN_ID_TTL: Duration = Duration::from_secs(30);

/// An admin whose token checked out.
#[derive(Clone, Debug)]
pub struct AdminIdentity {
    pub id: Uuid,
    pub username: String,
}

/// What an admin's token is checked against.
#[derive(Clone, Debug)]
pub struct AdminRecord {
    pub username: String,
    /// Bumped by a password change: tokens carrying an older version are refused.
    pub token_version: i32,
}

/// Shared authentication state: built once, cloned into every worker.
pub struct Auth {
    pool: Db,
    pub jwt: JwtKeys,
    /// Fingerprint of a whole key → the id of the key argon2id accepted it for.
    proven: InvalidatingCache<[u8; 32], String>,
    /// Key id → the key's record.
    records: InvalidatingCache<String, Arc<KeyRecord>>,
    /// Keys whose `last_used_at` this replica wrote recently.
    touched: Cache<String, ()>,
    admins: InvalidatingCache<Uuid, AdminRecord>,
    /// Key ids that did not exist a moment ago.
    unknown_ids: Cache<String, ()>,
    /// Wrong secrets per (key id, client address).
    key_failures: FailureLimiter,
    /// Failed logins per (username, client address): refuses that pair only.
    login_by_user: FailureLimiter,
    /// Failed logins per client address: slows that address, never refuses it.
    login_by_addr: FailureLimiter,
    /// One credential check at a time per key id or username.
    in_flight: InFlight,
    /// Permits for argon2id checks running or waiting: a burst beyond them is `Busy`.
    checks: Arc<Semaphore>,
    pub trusted_proxies: Vec<IpNet>,
    /// (key id, requests per second) → that key's request limiter.
    key_rates: moka::sync::Cache<(String, u32), Arc<DefaultDirectRateLimiter>>,
    key_rps_min: u32,
    key_rps_default: u32,
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
        let failures = |kind, limit, window| FailureLimiter::new(pool.clone(), kind, limit, window);
        Ok(Self {
            jwt,
            proven: InvalidatingCache::with_idle(100_000, PROOF_IDLE),
            records: InvalidatingCache::with_ttl(100_000, RECORD_TTL),
            touched: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(LAST_USED_PRECISION)
                .build(),
            admins: InvalidatingCache::with_ttl(10_000, ADMIN_CACHE_TTL),
            unknown_ids: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(UNKNOWN_ID_TTL)
                .build(),
            key_failures: failures("key_client", 10, Duration::from_secs(60)),
            login_by_user: failures("login_client", 10, Duration::from_secs(300)),
            login_by_addr: failures("login_addr", 30, Duration::from_secs(300)),
            in_flight: InFlight::default(),
            checks: Arc::new(Semaphore::new(config.auth_queue.max(1))),
            trusted_proxies: config.trusted_proxies.clone(),
            key_rates: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(60))
                .build(),
            key_rps_min: config.key_rps_min,
            key_rps_default: config.key_rps_default,
            pool,
        })
    }

    /// One argon2id check, if the queue has room.
    pub async fn verify_secret(
        &self,
        secret: String,
        hash: Option<String>,
    ) -> Result<bool, AuthError> {
        let Ok(_permit) = self.checks.clone().try_acquire_owned() else {
            return Err(AuthError::Busy);
        };
        Ok(password::verify(secret, hash).await?)
    }

    /// The admin a bearer token stands for: the token must verify, and its admin still
    /// exist with the token version it was issued under (a password change ends it).
    pub async fn authenticate_admin(
        &self,
        token: Option<&str>,
    ) -> Result<AdminIdentity, AuthError> {
        let claims = token
            .and_then(|t| self.jwt.verify(t))
            .ok_or(AuthError::InvalidAdminToken)?;
        let admin = self
            .admin_record(claims.sub)
            .await?
            .filter(|admin| admin.token_version == claims.ver)
            .ok_or(AuthError::InvalidAdminToken)?;
        Ok(AdminIdentity {
            id: claims.sub,
            username: admin.username,
        })
    }

    /// The admin if it still exists (briefly cached; deletions and password changes notify).
    pub async fn admin_record(&self, id: Uuid) -> Result<Option<AdminRecord>, AuthError> {
        if let Some(admin) = self.admins.get(&id).await {
            return Ok(Some(admin));
        }
        let since = self.admins.generation();
        let admin = sqlx::query_as!(
            AdminRecord,
            "SELECT username, token_version FROM admins WHERE id = $1",
            id
        )
        .fetch_optional(&self.pool)
        .await?;
        // A record that raced an announced change is used once, not kept.
        if let Some(admin) = admin.as_ref() {
            self.admins.insert_read_at(id, admin.clone(), since).await;
        }
        Ok(admin)
    }

    /// Drops whatever an announcement makes stale on this replica.
    pub async fn apply(&self, change: &Change) {
        match change {
            Change::Key(id) => {
                self.records.invalidate(id).await;
                self.unknown_ids.invalidate(id).await;
                let id = id.clone();
                self.proven.invalidate_if(move |_, key| *key == id).await;
            }
            Change::Tenant(id) => {
                let id = *id;
                self.records
                    .invalidate_if(move |_, r| r.caller.tenant.id == id)
                    .await;
            }
            Change::Admin(id) => self.admins.invalidate(id).await,
        }
    }

    /// Follows every replica's announcements (this one's included) on `feed`.
    pub fn follow(self: &Arc<Self>, feed: &ChangeFeed) {
        let auth = Arc::downgrade(self);
        feed.on(CHANNEL, move |signal| {
            let auth = auth.clone();
            async move {
                let Some(auth) = auth.upgrade() else { return };
                match signal {
                    Signal::Notified(payload) => match Change::parse(&payload) {
                        Some(change) => auth.apply(&change).await,
                        None => tracing::warn!("ignoring an unknown auth change notification"),
                    },
                    Signal::Missed => auth.forget_everything(),
                }
            }
        });
    }

    /// Drops every cached record, proof and admin (a notification may have been missed).
    fn forget_everything(&self) {
        self.records.invalidate_all();
        self.proven.invalidate_all();
        self.admins.invalidate_all();
    }

    /// Deletes the failure counts whose window ended (any replica may).
    pub async fn purge_failures(&self) {
        if let Err(e) = throttle::purge_expired(&self.pool).await {
            tracing::warn!("purging ended failure windows: {e}");
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
}

impl crate::store::audit::Notice for Change {
    fn channel(&self) -> &'static str {
        CHANNEL
    }

    fn payload(&self) -> String {
        Change::payload(self)
    }
}
