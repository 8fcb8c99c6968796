//! The gateway's own webhook on each upstream session: one ingress URL (with an unguessable
//! token) and one signing key per upstream session, registered for the union of the events
//! the session's subscriptions need, and kept in step with them.
//!
//! Every change for one upstream session runs under a transaction-scoped advisory lock, so
//! concurrent registrations (on any replica) are applied one after the other and the row in
//! `webhook_ingress` always says what the upstream has.

use crate::domain::Tenant;
use crate::domain::UpstreamSession;
use crate::http::error::ApiError;
use crate::services::quota::Quotas;
use crate::services::upstream::{UpstreamCall, UpstreamClient};
use crate::services::webhooks::signing::random_secret;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use bytes::Bytes;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

/// The route label the registration calls carry in metrics.
const ROUTE: &str = "/v1/sessions/{session}/webhooks";

/// What the upstream is asked to do for the gateway's own ingress.
pub struct IngressTarget<'a> {
    /// `WAGW_PUBLIC_URL` (or `http://{listen}`), without a trailing `/`.
    pub public_base: &'a str,
}

impl IngressTarget<'_> {
    pub fn url(&self, token: &str) -> String {
        format!(
            "{}{}{token}",
            self.public_base,
            crate::services::webhooks::INGRESS_PREFIX
        )
    }
}

/// The events the session's subscriptions need, sorted, or `None` when it has none.
async fn needed_events(
    conn: &mut PgConnection,
    tenant: Uuid,
    session_name: &str,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT array_agg(DISTINCT e ORDER BY e) FROM webhook_subscriptions w, unnest(w.events) e \
         WHERE w.tenant_id = $1 AND w.session_name = $2",
    )
    .bind(tenant)
    .bind(session_name)
    .fetch_one(conn)
    .await
}

/// Brings the upstream's registration for `upstream` in step with the subscriptions, within
/// the caller's transaction (which must commit for the change to count). A call that reaches
/// the upstream is admitted against the tenant's quotas and the organisation's budget like any
/// other; nothing to change means no call and nothing spent.
#[allow(clippy::too_many_arguments)]
pub async fn sync(
    pool: &crate::db::Db,
    conn: &mut PgConnection,
    client: &UpstreamClient,
    quotas: &Quotas,
    tenant: &Tenant,
    session_name: &str,
    upstream: &UpstreamSession,
    target: &IngressTarget<'_>,
) -> Result<(), ApiError> {
    // The ingress exists (committed) before the upstream hears of it, so an event the upstream
    // sends at once is recognised even while this transaction is still open.
    sqlx::query(
        "INSERT INTO webhook_ingress (upstream_name, token, hmac_key) VALUES ($1, $2, $3) \
         ON CONFLICT (upstream_name) DO NOTHING",
    )
    .bind(upstream.as_str())
    .bind(random_secret())
    .bind(random_secret())
    .execute(pool)
    .await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('wagw.webhooks'), hashtext($1))")
        .bind(upstream.as_str())
        .execute(&mut *conn)
        .await?;
    let needed = needed_events(conn, tenant.id, session_name).await?;
    let (token, hmac_key, registered): (String, String, Option<Vec<String>>) = sqlx::query_as(
        "SELECT token, hmac_key, events FROM webhook_ingress WHERE upstream_name = $1",
    )
    .bind(upstream.as_str())
    .fetch_one(&mut *conn)
    .await?;
    if needed == registered {
        return Ok(());
    }

    let url = target.url(&token);
    let path = format!("/v1/sessions/{}/webhooks", upstream.as_str());
    let (method, operation, body) = match &needed {
        Some(events) => (
            Method::POST,
            "addWebhook",
            json!({
                "webhookUrl": url,
                "events": events,
                "hmacKey": hmac_key,
                // The upstream retries in memory only; our ingress is rarely down for long.
                "retries": {"policy": "exponential", "delaySeconds": 2, "attempts": 5},
            }),
        ),
        None => (
            Method::DELETE,
            "deleteWebhooks",
            json!({ "webhookUrl": url }),
        ),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let call = UpstreamCall {
        method: method.clone(),
        path_and_query: path,
        body: Some(Bytes::from(body.to_string())),
        headers: &headers,
        request_id: None,
        route: ROUTE,
        retryable: false,
    };
    let admission = quotas.admit(tenant, operation).await?;
    let sent = client.send(&call).await;
    match &sent {
        Err(failure) if failure.never_sent() => quotas.cancel(admission).await,
        _ => quotas.commit(admission),
    }
    let mut answer = sent.map_err(ApiError::from)?;
    let status = answer.status();
    quotas.observe_upstream(status.as_u16(), answer.headers());
    // Removing a registration from a session the upstream no longer has is done already.
    let done = status.is_success() || (method == Method::DELETE && status == StatusCode::NOT_FOUND);
    if !done {
        let message = answer
            .read_body()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "the upstream refused the webhook registration".to_owned());
        return Err(if status.is_client_error() {
            ApiError::new(status, message)
        } else {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "the upstream could not register the webhook; retry shortly",
            )
            .with_cause(anyhow::anyhow!("upstream answered {status}: {message}"))
        });
    }
    sqlx::query(
        "UPDATE webhook_ingress SET events = $2, registered_at = CASE WHEN $2::text[] IS NULL THEN NULL ELSE now() END \
         WHERE upstream_name = $1",
    )
    .bind(upstream.as_str())
    .bind(&needed)
    .execute(&mut *conn)
    .await?;
    tracing::info!(
        session = session_name,
        events = ?needed,
        "webhook registration with the upstream brought in step"
    );
    Ok(())
}

#[derive(sqlx::FromRow)]
struct TenantSessionRow {
    #[sqlx(flatten)]
    tenant: crate::store::tenants::TenantRow,
    session: String,
    upstream_name: String,
}

/// Sessions whose upstream registration is not what their subscriptions need: a session
/// created again under a known name (a new upstream session), or a change that failed half
/// way. The reconciler brings each in step.
pub async fn out_of_step(
    pool: &crate::db::Db,
) -> Result<Vec<(Tenant, String, String)>, sqlx::Error> {
    let rows: Vec<TenantSessionRow> = sqlx::query_as(
        "SELECT t.id, t.name, t.plan, t.monthly_requests, t.requests_per_second, t.max_sessions, t.status, t.created_at, \
                s.name AS session, s.upstream_name \
         FROM sessions s JOIN tenants t ON t.id = s.tenant_id \
         LEFT JOIN webhook_ingress i ON i.upstream_name = s.upstream_name \
         WHERE t.status = 'active' AND (SELECT array_agg(DISTINCT e ORDER BY e) FROM webhook_subscriptions w, unnest(w.events) e \
                WHERE w.tenant_id = s.tenant_id AND w.session_name = s.name) IS DISTINCT FROM i.events \
         LIMIT 100",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.tenant.into(), r.session, r.upstream_name))
        .collect())
}
