//! `idempotency_records`: the first answer of each send that carried an Idempotency-Key.

use crate::db::Db;
use crate::store::StoreError;
use uuid::Uuid;

/// A recorded answer.
#[derive(Debug, Clone)]
pub struct StoredAnswer {
    pub status: i32,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A key's record as a twin sees it; `answer` is `None` while the first request is in flight.
pub struct Record {
    pub request_hash: Vec<u8>,
    pub answer: Option<StoredAnswer>,
}

/// Claims the key (the primary key decides a race between replicas), or takes over a record
/// older than the replay window. Whether this call holds the key now.
pub async fn claim(
    db: &Db,
    tenant: Uuid,
    key: &str,
    fingerprint: &[u8],
) -> Result<bool, StoreError> {
    let claimed = sqlx::query!(
        "INSERT INTO idempotency_records (tenant_id, key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, key) DO UPDATE
           SET request_hash = EXCLUDED.request_hash, status = NULL, content_type = NULL, body = NULL, created_at = now()
           WHERE idempotency_records.created_at < now() - interval '24 hours'",
        tenant,
        key,
        fingerprint,
    )
    .execute(db)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

pub async fn find(db: &Db, tenant: Uuid, key: &str) -> Result<Option<Record>, StoreError> {
    let row = sqlx::query!(
        "SELECT request_hash, status, content_type, body FROM idempotency_records
          WHERE tenant_id = $1 AND key = $2",
        tenant,
        key,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| Record {
        request_hash: r.request_hash,
        answer: r.status.map(|status| StoredAnswer {
            status,
            content_type: r.content_type,
            body: r.body.unwrap_or_default(),
        }),
    }))
}

/// Records the answer of the request that holds the key.
pub async fn complete(
    db: &Db,
    tenant: Uuid,
    key: &str,
    answer: &StoredAnswer,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE idempotency_records SET status = $3, content_type = $4, body = $5
          WHERE tenant_id = $1 AND key = $2",
        tenant,
        key,
        answer.status,
        answer.content_type.as_deref(),
        &answer.body,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Frees a key whose answer was never recorded.
pub async fn release(db: &Db, tenant: Uuid, key: &str) -> Result<(), StoreError> {
    sqlx::query!(
        "DELETE FROM idempotency_records WHERE tenant_id = $1 AND key = $2 AND status IS NULL",
        tenant,
        key,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes records past the replay window; how many.
pub async fn purge_expired(db: &Db) -> Result<u64, StoreError> {
    let purged = sqlx::query!(
        "DELETE FROM idempotency_records WHERE created_at < now() - interval '24 hours'"
    )
    .execute(db)
    .await?;
    Ok(purged.rows_affected())
}
