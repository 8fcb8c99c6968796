//! Tenant keys: the record a key id stands for, the one-time argon2id proof of a whole key,
//! the per-key request limiter, and `last_used_at`.

use crate::domain::{Mode, Plan, Quota, Scopes, Tenant, TenantStatus};
use crate::services::auth::throttle::{self, Reservation};
use crate::services::auth::{Auth, AuthError, Throttle};
use chrono::{DateTime, Utc};
use governor::clock::{Clock, DefaultClock};
use governor::RateLimiter;
use std::num::NonZeroU32;
use std::sync::Arc;
use uuid::Uuid;

/// The per-key request limit is this many times the tenant's own rate limit: room for the
/// uncounted calls (status, usage, webhooks) around the counted ones.
const KEY_RPS_FACTOR: u32 = 5;

#[derive(Clone, Debug)]
pub struct TenantKeyInfo {
    pub id: String,
    pub name: String,
    pub sessions: Option<Vec<String>>,
    pub scopes: Scopes,
    /// Test keys are served by the simulator and see only test sessions.
    pub mode: Mode,
    /// The earlier of expiry and (grace-delayed) revocation.
    pub valid_until: Option<DateTime<Utc>>,
}

/// A key that authenticated, and whose it is.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub tenant: Arc<Tenant>,
    pub key: Arc<TenantKeyInfo>,
}

/// A key as stored: what it may do, and the hash its secret is checked against.
pub struct KeyRecord {
    pub(super) caller: Authenticated,
    secret_hash: String,
}

enum LoadError {
    Missing,
    Database(Arc<sqlx::Error>),
}

struct KeyRow {
    id: String,
    name: String,
    secret_hash: String,
    mode: Mode,
    scopes: Vec<String>,
    sessions: Option<Vec<String>>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    tenant_id: Uuid,
    tenant_name: String,
    plan: Plan,
    monthly_requests: Option<i64>,
    requests_per_second: Option<i32>,
    max_sessions: Option<i32>,
    status: TenantStatus,
    tenant_created_at: DateTime<Utc>,
}

impl Auth {
    /// The whole check a `/v1` call passes: the key, its request limiter, its tenant's status.
    pub async fn authenticate_tenant(
        &self,
        raw: &str,
        client: &str,
    ) -> Result<Authenticated, AuthError> {
        let caller = self.authenticate_key(raw, client).await?;
        self.admit_request(&caller)?;
        if caller.tenant.is_suspended() {
            return Err(AuthError::Suspended);
        }
        Ok(caller)
    }

    /// Whether a key that opened a stream may still hold it: not revoked nor expired, its
    /// tenant not suspended. A stream is one request, so no request limit is taken.
    pub async fn recheck_tenant(
        &self,
        raw: &str,
        client: &str,
    ) -> Result<Authenticated, AuthError> {
        let caller = self.authenticate_key(raw, client).await?;
        if caller.tenant.is_suspended() {
            return Err(AuthError::Suspended);
        }
        Ok(caller)
    }

    /// The per-key request limiter: refused once the key sends faster than its share.
    pub fn admit_request(&self, caller: &Authenticated) -> Result<(), AuthError> {
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
            AuthError::Throttled {
                throttle: Throttle::KeyRate,
                retry_after: (wait.as_secs_f64().ceil() as u64).max(1),
            }
        })
    }

    /// Verifies a presented key from `client`: from the caches when warm, else one database
    /// read and one argon2id check. Every refusal is the same `InvalidKey`, except a (key id,
    /// client) pair that used up its failures (argon2id not run) and a full queue (`Busy`).
    pub async fn authenticate_key(
        &self,
        raw: &str,
        client: &str,
    ) -> Result<Authenticated, AuthError> {
        let parsed = crate::domain::api_key::parse(raw).ok_or(AuthError::InvalidKey)?;
        if self.unknown_ids.contains_key(parsed.id) {
            return Err(AuthError::InvalidKey);
        }
        let fingerprint = crate::domain::api_key::fingerprint(raw);
        let (records_at, proven_at) = (self.records.generation(), self.proven.generation());
        let record = self.key_record(parsed.id).await?;
        // Revoked and expired keys are refused before argon2id runs, and so is a key whose
        // text claims the other mode (its checksum is anyone's to compute).
        if !still_valid(&record.caller.key) || record.caller.key.mode != parsed.mode {
            return Err(AuthError::InvalidKey);
        }
        if !self.proven.contains_key(&fingerprint) {
            self.prove(&parsed, fingerprint, &record, client).await?;
        }
        if !self.records.unchanged_since(records_at) || !self.proven.unchanged_since(proven_at) {
            // A change was announced while we read: serve this call, but keep nothing.
            self.records.invalidate(parsed.id).await;
            self.proven.invalidate(&fingerprint).await;
        }
        self.touch(&record.caller.key.id).await;
        Ok(record.caller.clone())
    }

    /// The key's record; a key id that does not exist is remembered (and nothing counted:
    /// a random id cannot be guessed, so its failures protect nothing).
    async fn key_record(&self, id: &str) -> Result<Arc<KeyRecord>, AuthError> {
        match self.records.get_or_load(id, self.load_record(id)).await {
            Ok(record) => Ok(record),
            Err(e) => match &*e {
                LoadError::Missing => {
                    self.unknown_ids.insert(id.to_owned(), ()).await;
                    Err(AuthError::InvalidKey)
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
    ) -> Result<(), AuthError> {
        let subject = throttle::pair(parsed.id, client);
        if let Reservation::Refused { retry_after } = self.key_failures.reserve(&subject).await? {
            return Err(AuthError::Throttled {
                throttle: Throttle::KeyFailures,
                retry_after,
            });
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
            Ok(false) => Err(AuthError::InvalidKey),
            Err(e) => {
                self.key_failures.release(&subject).await?;
                Err(e)
            }
        }
    }

    async fn load_record(&self, id: &str) -> Result<Arc<KeyRecord>, LoadError> {
        let row = sqlx::query_as!(
            KeyRow,
            r#"SELECT k.id, k.name, k.secret_hash, k.mode AS "mode: Mode", k.scopes, k.sessions, k.expires_at, k.revoked_at,
                      t.id AS tenant_id, t.name AS tenant_name, t.plan AS "plan: Plan", t.monthly_requests,
                      t.requests_per_second, t.max_sessions, t.status AS "status: TenantStatus",
                      t.created_at AS tenant_created_at
                 FROM tenant_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.id = $1"#,
            id
        )
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
            let written = sqlx::query!(
                "UPDATE tenant_keys SET last_used_at = now() WHERE id = $1",
                key_id
            )
            .execute(&pool)
            .await;
            // Only bookkeeping: the call it records was served.
            if let Err(e) = written {
                tracing::warn!(key = %key_id, "recording a key's last use: {e}");
            }
        });
    }
}

fn still_valid(key: &TenantKeyInfo) -> bool {
    key.valid_until.is_none_or(|until| until > Utc::now())
}

impl KeyRow {
    fn to_caller(&self) -> Authenticated {
        let valid_until = match (self.expires_at, self.revoked_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Authenticated {
            tenant: Arc::new(Tenant {
                id: self.tenant_id,
                name: self.tenant_name.clone(),
                quota: Quota {
                    monthly_requests: self.monthly_requests,
                    requests_per_second: self.requests_per_second,
                    max_sessions: self.max_sessions,
                },
                plan: self.plan,
                status: self.status,
                created_at: self.tenant_created_at,
            }),
            key: Arc::new(TenantKeyInfo {
                id: self.id.clone(),
                name: self.name.clone(),
                sessions: self.sessions.clone(),
                scopes: Scopes::from_stored(&self.scopes),
                mode: self.mode,
                valid_until,
            }),
        }
    }
}
