//! `webhook_ingress`: the gateway's own webhook on each upstream session (the token in its
//! URL, the key the upstream signs with, the events the upstream has registered).

use crate::db::Db;
use crate::domain::{Mode, Plan};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// What the upstream is registered with for one upstream session.
#[derive(Debug, Clone)]
pub struct Registration {
    pub token: String,
    pub hmac_key: String,
    /// `None`: not (or no longer) registered.
    pub events: Option<Vec<String>>,
}

/// The session an ingress token belongs to, with the key its events must be signed with.
#[derive(Debug, Clone)]
pub struct Ingress {
    pub upstream_name: String,
    pub hmac_key: String,
    pub tenant_id: Uuid,
    pub session_name: String,
    /// The session's mode: its events reach only subscriptions of that mode.
    pub mode: Mode,
}

/// A session whose ingress is not registered, with its tenant (active).
#[derive(Debug, Clone)]
pub struct OutOfStep {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub plan: Plan,
    pub monthly_requests: Option<i64>,
    pub requests_per_second: Option<i32>,
    pub max_sessions: Option<i32>,
    pub tenant_created_at: DateTime<Utc>,
    pub session_name: String,
    pub mode: Mode,
    pub upstream_name: String,
}

/// Creates the session's ingress with these secrets unless it has one.
pub async fn ensure(
    db: impl PgExecutor<'_>,
    upstream: &str,
    token: &str,
    hmac_key: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO webhook_ingress (upstream_name, token, hmac_key) VALUES ($1, $2, $3) \
         ON CONFLICT (upstream_name) DO NOTHING",
        upstream,
        token,
        hmac_key,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Holds every change for one upstream session, on any replica, until `conn`'s transaction
/// ends.
pub async fn lock_session(conn: &mut PgConnection, upstream: &str) -> Result<(), StoreError> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtext('wagw.webhooks'), hashtext($1))",
        upstream,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn registration(
    conn: &mut PgConnection,
    upstream: &str,
) -> Result<Registration, StoreError> {
    let found = sqlx::query_as!(
        Registration,
        "SELECT token, hmac_key, events FROM webhook_ingress WHERE upstream_name = $1",
        upstream,
    )
    .fetch_one(conn)
    .await?;
    Ok(found)
}

/// Records what the upstream now has registered (`None`: nothing).
pub async fn record_registered(
    conn: &mut PgConnection,
    upstream: &str,
    events: Option<&[String]>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE webhook_ingress SET events = $2, \
                registered_at = CASE WHEN $2::text[] IS NULL THEN NULL ELSE now() END \
         WHERE upstream_name = $1",
        upstream,
        events,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Every ingress token there is.
pub async fn tokens(db: &Db) -> Result<Vec<String>, StoreError> {
    let tokens = sqlx::query_scalar!("SELECT token FROM webhook_ingress")
        .fetch_all(db)
        .await?;
    Ok(tokens)
}

pub async fn lookup(db: &Db, token: &str) -> Result<Option<Ingress>, StoreError> {
    let found = sqlx::query_as!(
        Ingress,
        r#"SELECT i.upstream_name, i.hmac_key, s.tenant_id, s.name AS session_name,
                  s.mode AS "mode: Mode"
           FROM webhook_ingress i JOIN sessions s ON s.upstream_name = i.upstream_name
           WHERE i.token = $1"#,
        token,
    )
    .fetch_optional(db)
    .await?;
    Ok(found)
}

/// Sessions of active tenants whose ingress is not registered for `wanted` (a registration
/// that failed, or a session from before every session was registered). A session created in
/// the last few seconds is its creation's to register (the upstream may not have it yet). At
/// most 100 at a time.
pub async fn out_of_step(db: &Db, wanted: &[String]) -> Result<Vec<OutOfStep>, StoreError> {
    let rows = sqlx::query_as!(
        OutOfStep,
        r#"SELECT t.id AS tenant_id, t.name AS tenant_name, t.plan AS "plan: Plan", t.monthly_requests,
                t.requests_per_second, t.max_sessions, t.created_at AS tenant_created_at,
                s.name AS session_name, s.mode AS "mode: Mode", s.upstream_name
         FROM sessions s JOIN tenants t ON t.id = s.tenant_id
         LEFT JOIN webhook_ingress i ON i.upstream_name = s.upstream_name
         WHERE t.status = 'active' AND i.events IS DISTINCT FROM $1::text[]
           AND s.created_at < now() - interval '10 seconds'
         LIMIT 100"#,
        wanted,
    )
    .fetch_all(db)
    .await?;
    Ok(rows)
}
