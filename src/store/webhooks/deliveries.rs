//! Reading and resetting `webhook_deliveries` for the tenants' and admins' listings.

use crate::db::Db;
use crate::domain::webhooks::DeliveryStatus;
use crate::domain::Mode;
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// One delivery with its event and target, as stored (the raw error included).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub session_name: String,
    /// The upstream event's `id`.
    pub event_id: String,
    pub event: String,
    pub webhook_url: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Which deliveries a listing shows, newest first.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub status: Option<DeliveryStatus>,
    pub limit: i64,
}

/// The session's deliveries (the session of that mode).
pub async fn for_session(
    db: &Db,
    tenant: Uuid,
    mode: Mode,
    session: &str,
    filter: Filter,
) -> Result<Vec<Delivery>, StoreError> {
    list(db, Some(tenant), Some((mode, session)), filter).await
}

/// Every tenant's deliveries, or one's (admins), of both modes.
pub async fn all(
    db: &Db,
    tenant: Option<Uuid>,
    filter: Filter,
) -> Result<Vec<Delivery>, StoreError> {
    list(db, tenant, None, filter).await
}

/// The deliveries of the tenant and session given, each `None` for all.
async fn list(
    db: &Db,
    tenant: Option<Uuid>,
    session: Option<(Mode, &str)>,
    filter: Filter,
) -> Result<Vec<Delivery>, StoreError> {
    let (mode, session) = session.unzip();
    let rows = sqlx::query_as!(
        Delivery,
        r#"SELECT d.id, d.tenant_id, d.session_name, e.event_id, e.event, w.url AS webhook_url,
                  d.status AS "status: DeliveryStatus", d.attempts, d.last_status, d.last_error,
                  d.next_attempt_at, d.last_attempt_at, d.created_at, d.finished_at
           FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_pk
           JOIN webhook_subscriptions w ON w.id = d.subscription_id
           WHERE ($1::uuid IS NULL OR d.tenant_id = $1)
             AND ($2::text IS NULL OR d.session_name = $2)
             AND ($3::text IS NULL OR d.status = $3)
             AND ($5::text IS NULL OR d.mode = $5)
           ORDER BY d.created_at DESC, d.id LIMIT $4"#,
        tenant,
        session,
        filter.status.map(DeliveryStatus::as_str),
        filter.limit,
        mode.map(Mode::as_str),
    )
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Makes a finished delivery of the session pending again, from a fresh set of attempts due
/// now; `None` when the session has no such delivery or it is still pending.
pub async fn reset(
    conn: &mut PgConnection,
    tenant: Uuid,
    mode: Mode,
    session: &str,
    id: Uuid,
) -> Result<Option<Delivery>, StoreError> {
    let reset = sqlx::query_as!(
        Delivery,
        r#"WITH reset AS (
             UPDATE webhook_deliveries SET status = 'pending', attempts = 0,
                    next_attempt_at = now(), finished_at = NULL
             WHERE id = $1 AND tenant_id = $2 AND session_name = $3 AND mode = $4
               AND status <> 'pending'
             RETURNING *)
           SELECT d.id AS "id!", d.tenant_id AS "tenant_id!", d.session_name AS "session_name!",
                  e.event_id, e.event, w.url AS webhook_url,
                  d.status AS "status!: DeliveryStatus", d.attempts AS "attempts!",
                  d.last_status, d.last_error, d.next_attempt_at AS "next_attempt_at!",
                  d.last_attempt_at, d.created_at AS "created_at!", d.finished_at
           FROM reset d JOIN webhook_events e ON e.id = d.event_pk
           JOIN webhook_subscriptions w ON w.id = d.subscription_id"#,
        id,
        tenant,
        session,
        mode.as_str(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(reset)
}

/// Whether the session has this delivery at all.
pub async fn exists(
    conn: &mut PgConnection,
    tenant: Uuid,
    mode: Mode,
    session: &str,
    id: Uuid,
) -> Result<bool, StoreError> {
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM webhook_deliveries
                          WHERE id = $1 AND tenant_id = $2 AND session_name = $3
                            AND mode = $4) AS "found!""#,
        id,
        tenant,
        session,
        mode.as_str(),
    )
    .fetch_one(conn)
    .await?;
    Ok(found)
}
