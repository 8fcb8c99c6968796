//! `Idempotency-Key` on sends: the same key with the same body within 24 h returns the first
//! answer without calling the upstream again, also when both arrive at once on two replicas.
//!
//! The first request claims the key with an insert (the primary key decides the race in
//! PostgreSQL); a concurrent twin waits for the winner's answer; a different body under the
//! same key is refused with 422.

use crate::db::Db;
use crate::http::error::ApiError;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

pub const HEADER: &str = "idempotency-key";
/// A key's rule, as [`parse_key`] applies it: 1 to this many bytes of printable ASCII.
pub const KEY_MAX_BYTES: usize = 255;
/// The same rule as a pattern (`!` to `~` are the printable ASCII characters but space).
pub const KEY_PATTERN: &str = "^[!-~]+$";
/// How often a twin looks for the winner's answer, and for how long at most.
const POLL_EVERY: Duration = Duration::from_millis(25);

/// A recorded answer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredAnswer {
    pub status: i32,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct Record {
    request_hash: Vec<u8>,
    status: Option<i32>,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
}

pub enum Claim {
    /// We are first: send, then `complete` (or `release` if nothing was sent).
    Fresh,
    /// Answered before: replay it.
    Replay(StoredAnswer),
}

/// Validates the client's key: printable ASCII, at most 255 bytes.
pub fn parse_key(raw: &actix_web::http::header::HeaderValue) -> Result<String, ApiError> {
    let key = raw
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(str::to_owned).ok_or_else(|| {
        ApiError::bad_request("Idempotency-Key must be 1 to 255 printable ASCII characters")
    })
}

/// What makes two requests "the same": the endpoint and the exact body.
pub fn fingerprint(operation: &str, body: &[u8]) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(operation.as_bytes());
    hash.update([0]);
    hash.update(body);
    hash.finalize().to_vec()
}

pub async fn claim(
    pool: &Db,
    tenant: Uuid,
    key: &str,
    fingerprint: &[u8],
    wait: Duration,
) -> Result<Claim, ApiError> {
    // Insert, or take over a record older than the replay window.
    let claimed = sqlx::query(
        "INSERT INTO idempotency_records (tenant_id, key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, key) DO UPDATE
           SET request_hash = EXCLUDED.request_hash, status = NULL, content_type = NULL, body = NULL, created_at = now()
           WHERE idempotency_records.created_at < now() - interval '24 hours'",
    )
    .bind(tenant)
    .bind(key)
    .bind(fingerprint)
    .execute(pool)
    .await?
    .rows_affected()
        == 1;
    if claimed {
        return Ok(Claim::Fresh);
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let row: Option<Record> = sqlx::query_as(
            "SELECT request_hash, status, content_type, body FROM idempotency_records WHERE tenant_id = $1 AND key = $2",
        )
        .bind(tenant)
        .bind(key)
        .fetch_optional(pool)
        .await?;
        match row.map(|r| (r.request_hash, r.status, r.content_type, r.body)) {
            Some((hash, _, _, _)) if hash != fingerprint => {
                return Err(ApiError::unprocessable(
                    "this Idempotency-Key was already used with a different request; use a new key",
                ))
            }
            Some((_, Some(status), content_type, body)) => {
                return Ok(Claim::Replay(StoredAnswer {
                    status,
                    content_type,
                    body: body.unwrap_or_default(),
                }))
            }
            // The first request gave up without sending: its key is free again.
            None => return Box::pin(claim(pool, tenant, key, fingerprint, wait)).await,
            Some(_) if tokio::time::Instant::now() >= deadline => {
                return Err(ApiError::conflict(
                    "a request with this Idempotency-Key is still in progress; retry shortly",
                ))
            }
            Some(_) => tokio::time::sleep(POLL_EVERY).await,
        }
    }
}

/// Records the answer of the first request.
pub async fn complete(
    pool: &Db,
    tenant: Uuid,
    key: &str,
    status: u16,
    content_type: Option<&str>,
    body: &Bytes,
) -> Result<(), ApiError> {
    sqlx::query("UPDATE idempotency_records SET status = $3, content_type = $4, body = $5 WHERE tenant_id = $1 AND key = $2")
        .bind(tenant)
        .bind(key)
        .bind(i32::from(status))
        .bind(content_type)
        .bind(body.as_ref())
        .execute(pool)
        .await?;
    Ok(())
}

/// Frees the key when the request was refused before anything reached the upstream.
pub async fn release(pool: &Db, tenant: Uuid, key: &str) {
    let released = sqlx::query(
        "DELETE FROM idempotency_records WHERE tenant_id = $1 AND key = $2 AND status IS NULL",
    )
    .bind(tenant)
    .bind(key)
    .execute(pool)
    .await;
    if let Err(e) = released {
        tracing::warn!("releasing an idempotency key: {e}");
    }
}

/// Releases a claim whose request is dropped before it settles (a panic, a cancelled future),
/// so a retry with the same key is not kept waiting for 24 h. `settled` once the answer was
/// recorded or the key released.
pub struct ClaimGuard {
    pool: Db,
    tenant: Uuid,
    key: Option<String>,
}

impl ClaimGuard {
    pub fn new(pool: Db, tenant: Uuid, key: String) -> Self {
        Self {
            pool,
            tenant,
            key: Some(key),
        }
    }

    pub fn settled(mut self) {
        self.key = None;
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let (pool, tenant) = (self.pool.clone(), self.tenant);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { release(&pool, tenant, &key).await });
        }
    }
}

/// Deletes records past the replay window (nothing else ever would: keys are only taken over
/// on reuse). Run hourly from the quota flusher.
pub async fn purge_expired(pool: &Db) {
    let purged = sqlx::query(
        "DELETE FROM idempotency_records WHERE created_at < now() - interval '24 hours'",
    )
    .execute(pool)
    .await;
    match purged {
        Ok(done) if done.rows_affected() > 0 => {
            tracing::info!(
                purged = done.rows_affected(),
                "expired idempotency records deleted"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("purging idempotency records: {e}"),
    }
}
