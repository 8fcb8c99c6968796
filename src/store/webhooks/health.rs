//! Endpoint health and the outbox's bounds: disabling an endpoint that keeps failing (with a
//! `webhook.disabled` event in its tenant's log), ending the pending deliveries of disabled
//! endpoints, the cap on pending deliveries per tenant, and recovering failed deliveries.

use crate::db::Db;
use crate::domain::Mode;
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::time::Duration;
use uuid::Uuid;

/// The event written into the tenant's log when one of its endpoints is disabled.
pub const DISABLED_EVENT: &str = "webhook.disabled";
/// What a delivery of a disabled endpoint ends with.
pub const DISABLED_ERROR: &str = "the webhook is disabled";

/// An endpoint just disabled.
#[derive(Debug, Clone)]
pub struct Disabled {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub mode: Mode,
    pub session_name: String,
    pub url: String,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: DateTime<Utc>,
}

/// Disables the endpoint unless it already is, and ends its pending deliveries that no
/// attempt holds; `None` when it was already disabled (or is gone).
pub async fn disable(
    conn: &mut PgConnection,
    subscription: Uuid,
    reason: &str,
) -> Result<Option<Disabled>, StoreError> {
    let Some(row) = sqlx::query!(
        r#"UPDATE webhook_subscriptions SET disabled_at = now(), disabled_reason = $2
           WHERE id = $1 AND disabled_at IS NULL
           RETURNING id, tenant_id, mode AS "mode: Mode", session_name, url, failing_since,
                     disabled_at AS "disabled_at!""#,
        subscription,
        reason,
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    sqlx::query!(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = $2, finished_at = now() \
         WHERE subscription_id = $1 AND status = 'pending' \
           AND (leased_until IS NULL OR leased_until <= now())",
        subscription,
        DISABLED_ERROR,
    )
    .execute(&mut *conn)
    .await?;
    Ok(Some(Disabled {
        id: row.id,
        tenant_id: row.tenant_id,
        mode: row.mode,
        session_name: row.session_name,
        url: row.url,
        failing_since: row.failing_since,
        disabled_at: row.disabled_at,
    }))
}

/// Writes one of the gateway's own events into the tenant's log (no delivery is made for
/// it): `body` is the envelope, `event_id` its id. The upstream session, when the tenant's
/// session still exists, is the one its events come from.
pub async fn log_event(
    conn: &mut PgConnection,
    disabled: &Disabled,
    event_id: &str,
    event: &str,
    body: &[u8],
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO webhook_events (id, upstream_session, event_id, tenant_id, session_name, \
                                     event, body, mode) \
         VALUES ($1, coalesce((SELECT upstream_name FROM sessions \
                               WHERE tenant_id = $3 AND mode = $6 AND name = $4), ''), \
                 $2, $3, $4, $5, $7, $6)",
        Uuid::now_v7(),
        event_id,
        disabled.tenant_id,
        disabled.session_name,
        event,
        disabled.mode.as_str(),
        body,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends the pending deliveries of disabled endpoints that no attempt holds (events that came
/// in after the endpoint was disabled); how many. They can be recovered once it is enabled.
pub async fn end_disabled_pending(db: &Db) -> Result<u64, StoreError> {
    let done = sqlx::query!(
        "UPDATE webhook_deliveries d SET status = 'failed', last_error = $1, finished_at = now() \
         FROM webhook_subscriptions w \
         WHERE w.disabled_at IS NOT NULL AND d.subscription_id = w.id AND d.status = 'pending' \
           AND (d.leased_until IS NULL OR d.leased_until <= now())",
        DISABLED_ERROR,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Keeps every tenant at most `cap` pending deliveries: past it, the oldest pending ones no
/// attempt holds end failed with `error` (they can be recovered like any failure). Answers
/// how many were dropped, per tenant.
pub async fn drop_over_cap(db: &Db, cap: i64, error: &str) -> Result<Vec<(Uuid, i64)>, StoreError> {
    let dropped = sqlx::query!(
        r#"WITH over AS (
             SELECT tenant_id, count(*) - $1 AS excess FROM webhook_deliveries
             WHERE status = 'pending' GROUP BY tenant_id HAVING count(*) > $1),
           dropped AS (
             UPDATE webhook_deliveries d SET status = 'failed', last_error = $2,
                    finished_at = now()
             WHERE d.id IN (
               SELECT x.id FROM over o CROSS JOIN LATERAL (
                 SELECT id FROM webhook_deliveries
                 WHERE tenant_id = o.tenant_id AND status = 'pending'
                   AND (leased_until IS NULL OR leased_until <= now())
                 ORDER BY created_at LIMIT o.excess FOR UPDATE SKIP LOCKED) x)
             RETURNING d.tenant_id)
           SELECT tenant_id AS "tenant_id!", count(*) AS "dropped!" FROM dropped
           GROUP BY tenant_id"#,
        cap,
        error,
    )
    .fetch_all(db)
    .await?;
    Ok(dropped
        .into_iter()
        .map(|r| (r.tenant_id, r.dropped))
        .collect())
}

/// The session whose deliveries are recovered.
#[derive(Debug, Clone, Copy)]
pub struct Recovery<'a> {
    pub tenant: Uuid,
    pub mode: Mode,
    pub session: &'a str,
    pub since: DateTime<Utc>,
}

/// Takes the session's recovery slot: `Ok(None)` when it was recovered less than `every`
/// ago, otherwise when the slot is free again (`Err`: how long until it is).
pub async fn take_recovery_slot(
    conn: &mut PgConnection,
    recovery: &Recovery<'_>,
    every: Duration,
) -> Result<Result<(), Duration>, StoreError> {
    let taken = sqlx::query_scalar!(
        "INSERT INTO webhook_recoveries (tenant_id, mode, session_name, recovered_at) \
         VALUES ($1, $2, $3, now()) \
         ON CONFLICT (tenant_id, mode, session_name) DO UPDATE SET recovered_at = now() \
         WHERE webhook_recoveries.recovered_at <= now() - make_interval(secs => $4) \
         RETURNING 1",
        recovery.tenant,
        recovery.mode.as_str(),
        recovery.session,
        every.as_secs_f64(),
    )
    .fetch_optional(&mut *conn)
    .await?;
    if taken.is_some() {
        return Ok(Ok(()));
    }
    let wait = sqlx::query_scalar!(
        r#"SELECT extract(epoch FROM recovered_at + make_interval(secs => $4) - now())::float8
               AS "wait!"
           FROM webhook_recoveries WHERE tenant_id = $1 AND mode = $2 AND session_name = $3"#,
        recovery.tenant,
        recovery.mode.as_str(),
        recovery.session,
        every.as_secs_f64(),
    )
    .fetch_one(conn)
    .await?;
    Ok(Err(Duration::from_secs_f64(wait.max(0.0))))
}

/// Makes the session's failed deliveries of events since `since` pending again, from a fresh
/// set of attempts due now, oldest first: at most `most`, and no more than leave the tenant
/// within `cap` pending deliveries. Deliveries of disabled endpoints stay as they are.
/// Answers how many were queued again.
pub async fn recover(
    conn: &mut PgConnection,
    recovery: &Recovery<'_>,
    most: i64,
    cap: i64,
) -> Result<i64, StoreError> {
    let recovered = sqlx::query_scalar!(
        r#"WITH room AS (
             SELECT greatest(0, $6 - count(*)) AS n FROM webhook_deliveries
             WHERE tenant_id = $1 AND status = 'pending'),
           reset AS (
             UPDATE webhook_deliveries SET status = 'pending', attempts = 0,
                    next_attempt_at = now(), finished_at = NULL, leased_until = NULL
             WHERE id IN (
               SELECT d.id FROM webhook_deliveries d
               JOIN webhook_subscriptions w ON w.id = d.subscription_id
               WHERE d.tenant_id = $1 AND d.mode = $2 AND d.session_name = $3
                 AND d.status = 'failed' AND d.created_at >= $4 AND w.disabled_at IS NULL
               ORDER BY d.created_at
               LIMIT least($5, (SELECT n FROM room))
               FOR UPDATE OF d SKIP LOCKED)
             RETURNING 1)
           SELECT count(*) AS "recovered!" FROM reset"#,
        recovery.tenant,
        recovery.mode.as_str(),
        recovery.session,
        recovery.since,
        most,
        cap,
    )
    .fetch_one(conn)
    .await?;
    Ok(recovered)
}
