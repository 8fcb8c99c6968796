//! `webhook_subscriptions`: the tenants' webhooks, by the tenant's session name and mode (so
//! they outlive the upstream session, and a test session's never receive a live one's events).

use crate::db::Db;
use crate::domain::webhook_signing::Scheme;
use crate::domain::webhooks::{Backoff, CustomHeader, NewSubscription, RetryPolicy};
use crate::domain::Mode;
use crate::store::{ResultExt, StoreError};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// The tenant a subscription is added for is gone (deleted while its key was still cached).
pub const TENANT_FKEY: &str = "webhook_subscriptions_tenant_id_fkey";

/// A subscription as stored, without its `hmac_key` or secrets (only whether it signs).
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: Uuid,
    pub session_name: String,
    pub url: String,
    pub events: Vec<String>,
    pub signing: Scheme,
    pub signed: bool,
    pub retries: RetryPolicy,
    pub custom_headers: Vec<CustomHeader>,
    pub created_at: DateTime<Utc>,
    pub health: Health,
}

/// How an endpoint is doing, and its secret's rotation.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Failing without a success since then.
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    /// Until then deliveries are also signed with the secret before the last rotation.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

struct Row {
    id: Uuid,
    session_name: String,
    url: String,
    events: Vec<String>,
    signing: Scheme,
    signed: bool,
    retry_policy: Backoff,
    retry_delay_seconds: i32,
    retry_attempts: i32,
    custom_headers: Json<Vec<CustomHeader>>,
    created_at: DateTime<Utc>,
    failing_since: Option<DateTime<Utc>>,
    disabled_at: Option<DateTime<Utc>>,
    disabled_reason: Option<String>,
    previous_secret_expires_at: Option<DateTime<Utc>>,
}

impl From<Row> for Subscription {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            session_name: r.session_name,
            url: r.url,
            events: r.events,
            signing: r.signing,
            signed: r.signed,
            retries: RetryPolicy {
                policy: r.retry_policy,
                delay_seconds: r.retry_delay_seconds,
                attempts: r.retry_attempts,
            },
            custom_headers: r.custom_headers.0,
            created_at: r.created_at,
            health: Health {
                failing_since: r.failing_since,
                disabled_at: r.disabled_at,
                disabled_reason: r.disabled_reason,
                previous_secret_expires_at: r.previous_secret_expires_at,
            },
        }
    }
}

/// A tenant's subscriptions in one mode as they were read, with the database's clock then.
pub struct Listing {
    /// `now()` just before the subscriptions were read.
    pub read_at: DateTime<Utc>,
    /// Each one's `previous_secret_expires_at` as stored, passed or not: the listing is kept
    /// (`services::webhooks::listing`) while the clock moves on, so whoever shows it judges it
    /// at that time.
    pub subscriptions: Vec<Subscription>,
}

/// The tenant's subscriptions in `mode`, of all its sessions, oldest first.
pub async fn list(db: &Db, tenant: Uuid, mode: Mode) -> Result<Listing, StoreError> {
    let read_at = sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(db)
        .await?;
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT id, session_name, url, events, signing AS "signing: Scheme",
                  (hmac_key IS NOT NULL OR signing_secret IS NOT NULL) AS "signed!",
                  retry_policy AS "retry_policy: Backoff", retry_delay_seconds, retry_attempts,
                  custom_headers AS "custom_headers: Json<Vec<CustomHeader>>", created_at,
                  failing_since, disabled_at, disabled_reason, previous_secret_expires_at
           FROM webhook_subscriptions
           WHERE tenant_id = $1 AND mode = $2
           ORDER BY created_at, id"#,
        tenant,
        mode.as_str(),
    )
    .fetch_all(db)
    .await?;
    Ok(Listing {
        read_at,
        subscriptions: rows.into_iter().map(Into::into).collect(),
    })
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

/// Adds a subscription, or replaces the one the session has for the same URL (its signing,
/// secrets and health too: a replaced endpoint starts enabled and not failing). A tenant that
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
               retry_policy, retry_delay_seconds, retry_attempts, custom_headers, mode, signing,
               signing_secret)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT ON CONSTRAINT webhook_subscriptions_target_key DO UPDATE SET
               events = EXCLUDED.events, hmac_key = EXCLUDED.hmac_key,
               retry_policy = EXCLUDED.retry_policy,
               retry_delay_seconds = EXCLUDED.retry_delay_seconds,
               retry_attempts = EXCLUDED.retry_attempts,
               custom_headers = EXCLUDED.custom_headers, signing = EXCLUDED.signing,
               signing_secret = EXCLUDED.signing_secret, previous_secret = NULL,
               previous_secret_expires_at = NULL, failing_since = NULL, disabled_at = NULL,
               disabled_reason = NULL, updated_at = now()
           RETURNING id, session_name, url, events, signing AS "signing: Scheme",
                     (hmac_key IS NOT NULL OR signing_secret IS NOT NULL) AS "signed!",
                     retry_policy AS "retry_policy: Backoff", retry_delay_seconds,
                     retry_attempts,
                     custom_headers AS "custom_headers: Json<Vec<CustomHeader>>", created_at,
                     failing_since, disabled_at, disabled_reason, previous_secret_expires_at"#,
        Uuid::now_v7(),
        tenant,
        session,
        new.url.as_str(),
        &new.events,
        new.signing.hmac_key(),
        new.retries.policy.as_str(),
        new.retries.delay_seconds,
        new.retries.attempts,
        Json(&new.custom_headers) as _,
        mode.as_str(),
        new.signing.scheme().as_str(),
        new.signing.secret().map(|s| s.expose()),
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

/// Which of the tenant's subscriptions a call names: by id, on the session (of the mode)
/// given, so another tenant's or another session's is simply not found.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    pub tenant: Uuid,
    pub mode: Mode,
    pub session: &'a str,
    pub id: Uuid,
}

/// Signs the named subscription with `secret` from now on, if it uses Standard Webhooks
/// signing; the secret it replaces keeps signing too for `grace` (none when zero). When the
/// previous secret was itself still in its grace period, it is dropped: at most two secrets
/// sign at once. One statement finds the subscription (locking it), checks its scheme and
/// rotates: `None` when there is no such subscription, else its scheme and, when rotated,
/// when the previous secret stops signing.
pub async fn rotate_secret<'e>(
    ex: impl PgExecutor<'e>,
    named: Named<'_>,
    secret: &str,
    grace: std::time::Duration,
) -> Result<Option<(Scheme, Option<DateTime<Utc>>)>, StoreError> {
    let row = sqlx::query!(
        r#"WITH target AS (
               SELECT id, signing FROM webhook_subscriptions
               WHERE id = $1 AND tenant_id = $2 AND mode = $3 AND session_name = $4 FOR UPDATE
           ), rotated AS (
               UPDATE webhook_subscriptions s SET
                   previous_secret = CASE WHEN $5::float8 > 0 THEN s.signing_secret END,
                   previous_secret_expires_at = CASE WHEN $5::float8 > 0
                       THEN now() + make_interval(secs => $5) END,
                   signing_secret = $6, updated_at = now()
               FROM target
               WHERE s.id = target.id AND target.signing = 'standard'
               RETURNING s.previous_secret_expires_at
           )
           SELECT target.signing AS "signing!: Scheme",
                  (SELECT previous_secret_expires_at FROM rotated) AS "until?"
           FROM target"#,
        named.id,
        named.tenant,
        named.mode.as_str(),
        named.session,
        grace.as_secs_f64(),
        secret,
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| (r.signing, r.until)))
}

/// Enables the named subscription again, as if it had never failed; `None` when there is no
/// such subscription.
pub async fn enable(
    conn: &mut PgConnection,
    named: Named<'_>,
) -> Result<Option<Subscription>, StoreError> {
    let row = sqlx::query_as!(
        Row,
        r#"UPDATE webhook_subscriptions SET disabled_at = NULL, disabled_reason = NULL,
               failing_since = NULL, updated_at = now()
           WHERE id = $1 AND tenant_id = $2 AND mode = $3 AND session_name = $4
           RETURNING id, session_name, url, events, signing AS "signing: Scheme",
                     (hmac_key IS NOT NULL OR signing_secret IS NOT NULL) AS "signed!",
                     retry_policy AS "retry_policy: Backoff", retry_delay_seconds,
                     retry_attempts,
                     custom_headers AS "custom_headers: Json<Vec<CustomHeader>>", created_at,
                     failing_since, disabled_at, disabled_reason,
                     CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
                         AS previous_secret_expires_at"#,
        named.id,
        named.tenant,
        named.mode.as_str(),
        named.session,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}
