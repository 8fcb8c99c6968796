//! The `tenant_keys` table: keys stored as an argon2id hash, listed without secrets.

use crate::domain::Mode;
use crate::store::{Page, StoreError, Window};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A key as listed: everything but its secret.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub prefix: String,
    pub name: String,
    /// `live`, or `test` for a key served by the simulator.
    pub mode: Mode,
    pub scopes: Vec<String>,
    pub sessions: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// In the future while a rotated key's grace period runs.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key that replaced this one by rotation.
    pub replaced_by: Option<String>,
}

/// What a key may do: what a new key is given, and what its rotation carries over.
#[derive(Debug, Clone)]
pub struct Grant {
    pub name: String,
    /// A rotation keeps it: a test key's replacement is a test key.
    pub mode: Mode,
    pub scopes: Vec<String>,
    pub sessions: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key row to write; `secret_hash` is the argon2id hash of its secret.
pub struct NewKey<'a> {
    pub id: &'a str,
    pub tenant_id: Uuid,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    pub grant: &'a Grant,
}

/// Writes the key; answers when it was created.
pub async fn insert(
    conn: &mut PgConnection,
    key: &NewKey<'_>,
) -> Result<DateTime<Utc>, StoreError> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO tenant_keys (id, tenant_id, name, prefix, secret_hash, scopes, sessions, expires_at, mode)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING created_at",
        key.id,
        key.tenant_id,
        key.grant.name,
        key.prefix,
        key.secret_hash,
        &key.grant.scopes,
        key.grant.sessions.as_deref(),
        key.grant.expires_at,
        key.grant.mode.as_str(),
    )
    .fetch_one(conn)
    .await?)
}

/// One page of the tenant's keys, newest first, and how many it has in all.
pub async fn list(
    db: &crate::db::Db,
    tenant: Uuid,
    window: Window,
) -> Result<Page<KeyView>, StoreError> {
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM tenant_keys WHERE tenant_id = $1"#,
        tenant
    )
    .fetch_one(db)
    .await?;
    let items = sqlx::query_as!(
        KeyView,
        r#"SELECT id, prefix, name, mode AS "mode: Mode", scopes, sessions, expires_at, created_at,
                last_used_at, revoked_at, replaced_by
         FROM tenant_keys WHERE tenant_id = $1
         ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"#,
        tenant,
        window.limit,
        window.offset
    )
    .fetch_all(db)
    .await?;
    Ok(Page { items, total })
}

/// Revokes the tenant's key now (ending a rotation's grace too); false when it has no such key.
pub async fn revoke<'e>(
    ex: impl PgExecutor<'e>,
    tenant: Uuid,
    key: &str,
) -> Result<bool, StoreError> {
    let found = sqlx::query_scalar!(
        "UPDATE tenant_keys SET revoked_at = CASE WHEN revoked_at IS NULL OR revoked_at > now() THEN now() ELSE revoked_at END
         WHERE id = $1 AND tenant_id = $2 RETURNING id",
        key,
        tenant
    )
    .fetch_optional(ex)
    .await?;
    Ok(found.is_some())
}

/// A key about to be rotated, locked until the transaction ends.
pub struct Locked {
    pub grant: Grant,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn lock(
    conn: &mut PgConnection,
    tenant: Uuid,
    key: &str,
) -> Result<Option<Locked>, StoreError> {
    let row = sqlx::query!(
        r#"SELECT name, mode AS "mode: Mode", scopes, sessions, expires_at, revoked_at FROM tenant_keys
         WHERE id = $1 AND tenant_id = $2 FOR UPDATE"#,
        key,
        tenant
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Locked {
        grant: Grant {
            name: r.name,
            mode: r.mode,
            scopes: r.scopes,
            sessions: r.sessions,
            expires_at: r.expires_at,
        },
        revoked_at: r.revoked_at,
    }))
}

/// Marks `key` replaced by `by`, working `grace_secs` more; answers until when.
pub async fn replace(
    conn: &mut PgConnection,
    key: &str,
    by: &str,
    grace_secs: u64,
) -> Result<DateTime<Utc>, StoreError> {
    let until = sqlx::query_scalar!(
        r#"UPDATE tenant_keys SET revoked_at = now() + make_interval(secs => $2), replaced_by = $3
           WHERE id = $1 RETURNING revoked_at AS "revoked_at!""#,
        key,
        grace_secs as f64,
        by
    )
    .fetch_one(conn)
    .await?;
    Ok(until)
}
