//! A tenant's actions on one of its endpoints, under `/v1/sessions/{session}/webhooks`
//! (gateway additions, scope `webhooks:write`): rotate a Standard Webhooks secret, enable an
//! endpoint the gateway disabled, and recover the session's failed deliveries since a time.
//! Another tenant's webhook, or another session's, is 404 like one that does not exist.

use crate::domain::webhook_signing::WebhookSecret;
use crate::http::admin::answers::{NoSuchWebhook, SessionPath, WebhookId, WritesWebhooks};
use crate::http::body::Unread;
use crate::http::error::ApiError;
use crate::http::tenant::webhooks::{OnSession, WebhookView};
use crate::services::webhooks::endpoints;
use crate::store::webhooks::health::Recovery;
use crate::store::webhooks::subscriptions::Named;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// How long the previous secret keeps signing after a rotation unless the call says, and the
/// longest it may (Svix's default and bound).
const DEFAULT_GRACE: Duration = Duration::from_secs(86_400);
const MAX_GRACE_SECS: i64 = 7 * 86_400;

/// The schemas of these routes (registered in `crate::http::routes::local`).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(RotateSecretRequest, RotatedSecret, RecoverRequest, Recovered)))]
pub struct WebhookEndpointsApi;

/// The body of `rotate-secret`; both fields optional.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // documents the body, which is read as JSON to name each bad field
#[serde(rename_all = "camelCase")]
pub struct RotateSecretRequest {
    /// The new `whsec_` secret (base64 of 24 to 64 bytes); one is generated when absent.
    secret: Option<String>,
    /// How long the previous secret keeps signing too, 0 to 604800 (default 86400).
    grace_period_seconds: Option<i64>,
}

/// A rotated secret: shown in this answer only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecret {
    pub id: Uuid,
    /// The secret that signs from now on.
    pub secret: String,
    /// Until then deliveries carry a second signature, with the previous secret; `null`
    /// without a grace period.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // documents the body, which is read as JSON to name each bad field
pub struct RecoverRequest {
    /// Failed deliveries of events since then (RFC 3339) are sent again; not in the future,
    /// nor older than failed deliveries are kept.
    since: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recovered {
    /// How many failed deliveries were queued again.
    pub recovered: i64,
    pub since: DateTime<Utc>,
}

/// The webhook a path names, on the caller's session: a malformed id is simply not found.
fn named<'a>(on: &'a OnSession, id: &str) -> Result<Named<'a>, ApiError> {
    let id =
        Uuid::parse_str(id).map_err(|_| ApiError::not_found(format!("webhook {id} not found")))?;
    Ok(Named {
        tenant: on.caller.tenant.id,
        mode: on.caller.key.mode,
        session: on.name.as_str(),
        id,
    })
}

/// The request's JSON object, `{}` when it has no body.
async fn object(body: Unread) -> Result<Value, ApiError> {
    match body.json().await? {
        None => Ok(Value::Object(Default::default())),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(ApiError::bad_request(
            "the request body must be a JSON object",
        )),
    }
}

/// Signs the webhook's deliveries with a new secret; the previous one signs too for the grace
/// period (two `v1,` signatures, space-separated), so receivers can switch without a gap.
#[utoipa::path(
    post,
    path = "/v1/sessions/{session}/webhooks/{id}/rotate-secret",
    tag = "Webhooks",
    operation_id = "rotateWebhookSecret",
    params(SessionPath, WebhookId),
    request_body(content = RotateSecretRequest, description = "Optional"),
    responses(
        (status = 200, description = "The new secret, shown only here", body = RotatedSecret),
        (status = 400, description = "A bad secret or grace period", body = ErrorBody),
        WritesWebhooks,
        NoSuchWebhook,
        (status = 409, description = "The webhook does not use `standard` signing", body = ErrorBody),
    )
)]
pub async fn rotate_secret(
    on: OnSession,
    path: web::Path<WebhookId>,
    body: Unread,
) -> Result<HttpResponse, ApiError> {
    let named = named(&on, &path.id)?;
    let json = object(body).await?;
    let secret = match json.get("secret") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Some(WebhookSecret::parse(raw)?),
        Some(_) => return Err(ApiError::bad_request("secret must be a string")),
    };
    let grace = match json.get("gracePeriodSeconds") {
        None | Some(Value::Null) => DEFAULT_GRACE,
        Some(v) => match v.as_i64() {
            Some(secs) if (0..=MAX_GRACE_SECS).contains(&secs) => Duration::from_secs(secs as u64),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "gracePeriodSeconds must be a whole number from 0 to {MAX_GRACE_SECS}"
                )))
            }
        },
    };
    let lists = &on.state.relay.subscriptions;
    let rotated = endpoints::rotate_secret(&on.state.db, lists, named, secret, grace).await?;
    Ok(HttpResponse::Ok().json(RotatedSecret {
        id: named.id,
        secret: rotated.secret.expose().to_owned(),
        previous_secret_expires_at: rotated.previous_expires_at,
    }))
}

/// Enables a webhook again after the gateway disabled it (failing for
/// `WAGW_WEBHOOK_DISABLE_AFTER_SECS`, or a 410 from the receiver); a no-op on an enabled one.
/// Deliveries that failed meanwhile are sent again by `recover`.
#[utoipa::path(
    post,
    path = "/v1/sessions/{session}/webhooks/{id}/enable",
    tag = "Webhooks",
    operation_id = "enableWebhook",
    params(SessionPath, WebhookId),
    responses(
        (status = 200, description = "The webhook, enabled", body = Webhook),
        WritesWebhooks,
        NoSuchWebhook,
    )
)]
pub async fn enable(on: OnSession, path: web::Path<WebhookId>) -> Result<HttpResponse, ApiError> {
    let named = named(&on, &path.id)?;
    let lists = &on.state.relay.subscriptions;
    let enabled = endpoints::enable(&on.state.db, lists, named).await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(enabled)))
}

/// Sends every failed delivery of the session's events since `since` again (to its enabled
/// webhooks), from a fresh set of attempts: at most 10,000 per call, once a minute per session.
#[utoipa::path(
    post,
    path = "/v1/sessions/{session}/webhooks/recover",
    tag = "Webhooks",
    operation_id = "recoverWebhookDeliveries",
    params(SessionPath),
    request_body = RecoverRequest,
    responses(
        (status = 202, description = "Queued for delivery again", body = Recovered),
        (status = 400, description = "`since` missing, malformed, in the future or past retention", body = ErrorBody),
        WritesWebhooks,
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 429, description = "Recovered less than a minute ago (`Retry-After`)", body = ErrorBody),
    )
)]
pub async fn recover(on: OnSession, body: Unread) -> Result<HttpResponse, ApiError> {
    let json = object(body).await?;
    let config = &on.state.config.webhooks;
    let since = parse_since(json.get("since"), Utc::now(), config.failed_retention)?;
    let recovery = Recovery {
        tenant: on.caller.tenant.id,
        mode: on.caller.key.mode,
        session: on.name.as_str(),
        since,
    };
    let recovered =
        endpoints::recover(&on.state.db, &recovery, config.max_pending_per_tenant).await?;
    Ok(HttpResponse::Accepted().json(Recovered { recovered, since }))
}

/// `since`: an RFC 3339 time, not after `now`, nor older than failed deliveries are kept.
fn parse_since(
    raw: Option<&Value>,
    now: DateTime<Utc>,
    retention: Duration,
) -> Result<DateTime<Utc>, ApiError> {
    let bad = || ApiError::bad_request("since must be a time in RFC 3339 (2026-01-31T12:00:00Z)");
    let since = raw
        .and_then(Value::as_str)
        .ok_or_else(bad)
        .and_then(|s| DateTime::parse_from_rfc3339(s).map_err(|_| bad()))?
        .with_timezone(&Utc);
    if since > now {
        return Err(ApiError::bad_request("since must not be in the future"));
    }
    let oldest = chrono::Duration::from_std(retention)
        .ok()
        .and_then(|r| now.checked_sub_signed(r));
    if oldest.is_some_and(|oldest| since < oldest) {
        return Err(ApiError::bad_request(format!(
            "since must be within the last {} days: failed deliveries are kept no longer",
            retention.as_secs().div_ceil(86_400)
        )));
    }
    Ok(since)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn since_is_rfc3339_in_the_past_within_retention() {
        let now = Utc::now();
        let week = Duration::from_secs(7 * 86_400);
        let ok = (now - chrono::Duration::hours(1)).to_rfc3339();
        assert!(parse_since(Some(&json!(ok)), now, week).is_ok());
        let future = (now + chrono::Duration::minutes(5)).to_rfc3339();
        let old = (now - chrono::Duration::days(8)).to_rfc3339();
        for bad in [
            json!(future),
            json!(old),
            json!("yesterday"),
            json!(1_700_000_000),
            json!("0000-01-01T00:00:00Z"),
            json!(null),
        ] {
            let e = parse_since(Some(&bad), now, week).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
        assert!(parse_since(None, now, week).is_err());
    }
}
