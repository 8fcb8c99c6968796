//! `webhook_subscriptions`: the tenants' webhooks, by the tenant's session name and mode (so
//! they outlive the upstream session, and a test session's never receive a live one's events).

use crate::db::Db;
use crate::domain::webhooks::{Backoff, CustomHeader, NewSubscription, RetryPolicy};
use crate::domain::Mode;
use crate::store::{ResultExt, StoreError};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgConnection;
use uuid::Uuid;

/// The tenant a subscription is added for is gone (deleted while its key was still cached).
pub const TENANT_FKEY: &str = "webhook_subscriptions_tenant_id_fkey";

/// A subscription as stored, without its `hmac_key` (only whether it has one).
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: Uuid,
    pub session_name: String,
    pub url: String,
    pub events: Vec<String>,
    pub signed: bool,
    pub retries: RetryPolicy,
    pub custom_headers: Vec<CustomHeader>,
    pub created_at: DateTime<Utc>,
}

struct Row {
    id: Uuid,
    session_name: String,
    url: String,
    events: Vec<String>,
    signed: bool,
    retry_policy: Backoff,
    retry_delay_seconds: i32,
    retry_attempts: i32,
    custom_headers: Json<Vec<CustomHeader>>,
    created_at: DateTime<Utc>,
}

impl From<Row> for Subscription {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            session_name: r.session_name,
            url: r.url,
            events: r.events,
            signed: r.signed,
            retries: RetryPolicy {
                policy: r.retry_policy,
                delay_seconds: r.retry_delay_seconds,
                attempts: r.retry_attempts,
            },
            custom_headers: r.custom_headers.0,
            created_at: r.created_at,
        }
    }
}

/// The tenant's subscriptions in `mode`, all its sessions' or one's, oldest first.
pub async fn list(
    db: &Db,
    tenant: Uuid,
    mode: Mode,
    session: Option<&str>,
) -> Result<Vec<Subscription>, StoreError> {
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT id, session_name, url, events, hmac_key IS NOT NULL AS "signed!",
                  retry_policy AS "retry_policy: Backoff", retry_delay_seconds, retry_attempts,
                  custom_headers AS "custom_headers: Json<Vec<CustomHeader>>", created_at
           FROM webhook_subscriptions
           WHERE tenant_id = $1 AND mode = $2 AND ($3::text IS NULL OR session_name = $3)
           ORDER BY created_at, id"#,
        tenant,
        mode.as_str(),
        session,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// How many subscriptions the session has to URLs other than `url`.
pub async fn count_others(
    conn: &mut PgConnection,
    tenant: Uuid,
    mode: Mode,
    session: &str,
    url: &str,
) -> Result<i64, StoreError> {
    let others = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM webhook_subscriptions
           WHERE tenant_id = $1 AND mode = $4 AND session_name = $2 AND url <> $3"#,
        tenant,
        session,
        url,
        mode.as_str(),
    )
    .fetch_one(conn)
    .await?;
    Ok(others)
}

/// Adds a subscription, or replaces the one the session has for the same URL. A tenant that
/// no longer exists is a conflict on [`TENANT_FKEY`].
pub async fn upsert(
    conn: &mut PgConnection,
    tenant: Uuid,
    mode: Mode,
    session: &str,
    new: &NewSubscription,
) -> Result<Subscription, StoreError> {
    let row = sqlx::query_as!(
        Row,
        r#"INSERT INTO webhook_subscriptions (id, tenant_id, session_name, url, events, hmac_key,
               retry_policy, retry_delay_seconds, retry_attempts, custom_headers, mode)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT ON CONSTRAINT webhook_subscriptions_target_key DO UPDATE SET
               events = EXCLUDED.events, hmac_key = EXCLUDED.hmac_key,
               retry_policy = EXCLUDED.retry_policy,
               retry_delay_seconds = EXCLUDED.retry_delay_seconds,
               retry_attempts = EXCLUDED.retry_attempts,
               custom_headers = EXCLUDED.custom_headers, updated_at = now()
           RETURNING id, session_name, url, events, hmac_key IS NOT NULL AS "signed!",
                     retry_policy AS "retry_policy: Backoff", retry_delay_seconds,
                     retry_attempts,
                     custom_headers AS "custom_headers: Json<Vec<CustomHeader>>", created_at"#,
        Uuid::now_v7(),
        tenant,
        session,
        new.url.as_str(),
        &new.events,
        new.hmac_key.as_deref(),
        new.retries.policy.as_str(),
        new.retries.delay_seconds,
        new.retries.attempts,
        Json(&new.custom_headers) as _,
        mode.as_str(),
    )
    .fetch_one(conn)
    .await
    .on_constraint(TENANT_FKEY, || "the tenant no longer exists".to_owned())?;
    Ok(row.into())
}

/// Removes the session's subscription to `url`, or all of them; how many went.
pub async fn delete(
    conn: &mut PgConnection,
    tenant: Uuid,
    mode: Mode,
    session: &str,
    url: Option<&str>,
) -> Result<u64, StoreError> {
    let done = sqlx::query!(
        "DELETE FROM webhook_subscriptions WHERE tenant_id = $1 AND mode = $4 \
         AND session_name = $2 AND ($3::text IS NULL OR url = $3)",
        tenant,
        session,
        url,
        mode.as_str(),
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
