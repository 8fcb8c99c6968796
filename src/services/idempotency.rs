//! `Idempotency-Key` on sends: the same key with the same body within 24 h returns the first
//! answer without calling the upstream again, also when both arrive at once on two replicas.
//!
//! The first request claims the key with an insert (the primary key decides the race in
//! PostgreSQL); a concurrent twin waits for the winner's answer; a different body under the
//! same key is refused. The winner holds a `Claimed` until it records its answer, or frees the
//! key when nothing reached the upstream.

use crate::db::Db;
use crate::domain::Invalid;
use crate::store::{idempotency as store, StoreError};
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

pub use store::StoredAnswer;

pub const HEADER: &str = "idempotency-key";
/// A key's rule, as [`parse_key`] applies it: 1 to this many bytes of printable ASCII.
pub const KEY_MAX_BYTES: usize = 255;
/// The same rule as a pattern (`!` to `~` are the printable ASCII characters but space).
pub const KEY_PATTERN: &str = "^[!-~]+$";
/// How often a twin looks for the winner's answer (for at most the wait `claim` is given).
const POLL_EVERY: Duration = Duration::from_millis(25);

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("this Idempotency-Key was already used with a different request; use a new key")]
    OtherRequest,
    #[error("a request with this Idempotency-Key is still in progress; retry shortly")]
    InProgress,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub enum Claim {
    /// We are first: send, then `complete` (or `release` if nothing was sent).
    Fresh(Claimed),
    /// Answered before: replay it.
    Replay(StoredAnswer),
}

/// Validates the client's key: printable ASCII, at most 255 bytes.
pub fn parse_key(raw: &actix_web::http::header::HeaderValue) -> Result<String, Invalid> {
    let key = raw
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(str::to_owned).ok_or_else(|| {
        Invalid::new(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
        )
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

/// Claims `key` for this request, or finds the first request's answer (waiting up to `wait`
/// for a twin in flight).
pub async fn claim(
    db: &Db,
    tenant: Uuid,
    key: String,
    fingerprint: &[u8],
    wait: Duration,
) -> Result<Claim, IdempotencyError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if store::claim(db, tenant, &key, fingerprint).await? {
            return Ok(Claim::Fresh(Claimed {
                db: db.clone(),
                tenant,
                key: Some(key),
                if_lost: None,
            }));
        }
        // Look until the twin answers; a record that vanished was freed: claim it again.
        while let Some(record) = store::find(db, tenant, &key).await? {
            if record.request_hash != fingerprint {
                return Err(IdempotencyError::OtherRequest);
            }
            if let Some(answer) = record.answer {
                return Ok(Claim::Replay(answer));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(IdempotencyError::InProgress);
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// The key, held by this request until its answer is recorded or the key released. Dropped
/// unsettled (a panic, a cancelled future) before sending, it is released in the background,
/// so a retry with the same key is not kept waiting for 24 h; once sending began, it keeps
/// the answer given to `sending` instead, so a retry is never sent twice.
#[must_use = "a claimed key must be completed or released"]
pub struct Claimed {
    db: Db,
    tenant: Uuid,
    key: Option<String>,
    if_lost: Option<StoredAnswer>,
}

impl Claimed {
    /// The upstream may get the call from now on: dropped unsettled, the key records `if_lost`.
    pub fn sending(&mut self, if_lost: StoredAnswer) {
        self.if_lost = Some(if_lost);
    }

    /// Records the answer the upstream gave (or the failure once it had the call).
    pub async fn complete(
        mut self,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), StoreError> {
        let Some(key) = self.key.take() else {
            return Ok(());
        };
        let answer = StoredAnswer {
            status: i32::from(status),
            content_type: content_type.map(str::to_owned),
            body: body.to_vec(),
        };
        store::complete(&self.db, self.tenant, &key, &answer).await
    }

    /// Frees the key: nothing reached the upstream, so it may be used again.
    pub async fn release(mut self) {
        if let Some(key) = self.key.take() {
            release(&self.db, self.tenant, &key).await;
        }
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let (db, tenant, if_lost) = (self.db.clone(), self.tenant, self.if_lost.take());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let Some(answer) = if_lost else {
                    return release(&db, tenant, &key).await;
                };
                if let Err(e) = store::complete(&db, tenant, &key, &answer).await {
                    tracing::warn!("recording a lost answer under its idempotency key: {e}");
                }
            });
        }
    }
}

async fn release(db: &Db, tenant: Uuid, key: &str) {
    if let Err(e) = store::release(db, tenant, key).await {
        tracing::warn!("releasing an idempotency key: {e}");
    }
}

/// Deletes records past the replay window (nothing else ever would: keys are only taken over
/// on reuse). Run hourly from the quota flusher.
pub async fn purge_expired(db: &Db) {
    match store::purge_expired(db).await {
        Ok(0) => {}
        Ok(purged) => tracing::info!(purged, "expired idempotency records deleted"),
        Err(e) => tracing::warn!("purging idempotency records: {e}"),
    }
}
