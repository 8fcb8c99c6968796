//! The tenant's webhook routes under `/v1/sessions/{session}/webhooks`: register (POST), list
//! (GET, our addition, scope `webhooks:read`), remove (DELETE), recent deliveries and
//! redelivery. Every answer carries the tenant's quota headers, like forwarded calls.

use crate::domain::events;
use crate::domain::webhook_signing::{Scheme, Signing, WebhookSecret};
use crate::domain::webhooks::{CustomHeader, DeliveryStatus, NewSubscription, RetryPolicy};
use crate::domain::{Mode, SessionName, UpstreamSession};
use crate::http::admin::answers::{
    BadDeliveryFilter, DeliveryId, DeliveryPending, SessionPath, WritesWebhooks,
};
use crate::http::body::Unread;
use crate::http::error::ApiError;
use crate::http::extract::{AdminCaller, TenantCaller};
use crate::http::routes::endpoints::ADD_WEBHOOK;
use crate::http::routes::schema;
use crate::http::state::AppState;
use crate::http::tenant::rewrite::query_param;
use crate::services::webhooks::listing::SubscriptionLists;
use crate::services::webhooks::registration::{Registrar, SessionRef};
use crate::services::webhooks::ssrf::{self, TargetRefused};
use crate::services::webhooks::subscriptions;
use crate::store::webhooks::deliveries::{self, Delivery, Filter};
use crate::store::webhooks::subscriptions::Subscription;
use actix_web::dev::Payload;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use url::Url;
use uuid::Uuid;

const MAX_URL_LEN: usize = 2048;
// Every delivery loads and sends a subscription's key and headers, so they are bounded.
const MAX_HMAC_KEY_BYTES: usize = 256;
const MAX_CUSTOM_HEADERS: usize = 20;
const MAX_HEADER_NAME_BYTES: usize = 64;
const MAX_HEADER_VALUE_BYTES: usize = 1024;
/// Names and values of all of a subscription's custom headers together.
const MAX_CUSTOM_HEADERS_BYTES: usize = 8 * 1024;
/// The gateway's signature and delivery headers (`X-Webhook-Hmac`, `-Hmac-Algorithm`,
/// `-Request-Id`, `-Timestamp`; Standard Webhooks' `webhook-id`, `-timestamp`, `-signature`)
/// all start so; a tenant may set none of them.
const SIGNATURE_PREFIXES: &[&str] = &["x-webhook-", "webhook-"];
/// Headers a tenant may not set on deliveries: ours, and those that describe the connection.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
];
/// Shown instead of a custom header's value: those are often credentials.
const HIDDEN: &str = "********";
/// Deliveries a listing shows unless `limit` says otherwise, and the most it may ask for.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// The schemas the relay's annotations name (its routes are in `crate::http::routes::local`).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(DeliveryView, AdminDeliveryView)))]
pub struct WebhooksApi;

/// A webhook as the tenant sees it: never its `hmacKey` or secret (except a generated secret,
/// once, in the answer that made it), nor its headers' values.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub id: Uuid,
    pub webhook_url: String,
    pub events: Vec<String>,
    /// `hmac-sha512` or `standard`.
    pub signing: &'static str,
    /// Whether deliveries are signed (an `hmacKey`, or `standard`); keys are never shown.
    pub signed: bool,
    /// The `whsec_` secret the gateway generated: in the 201 that made it, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub retries: RetryPolicy,
    pub custom_headers: Vec<CustomHeader>,
    /// False once the endpoint was disabled (failing for too long, or a 410); see `enable`.
    pub enabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    /// Failing without a success since then.
    pub failing_since: Option<DateTime<Utc>>,
    /// After a secret rotation: until then the previous secret signs too.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<Subscription> for WebhookView {
    fn from(s: Subscription) -> Self {
        Self {
            id: s.id,
            webhook_url: s.url,
            events: s.events,
            signing: s.signing.as_str(),
            signed: s.signed,
            secret: None,
            retries: s.retries,
            enabled: s.health.disabled_at.is_none(),
            disabled_at: s.health.disabled_at,
            disabled_reason: s.health.disabled_reason,
            failing_since: s.health.failing_since,
            previous_secret_expires_at: s.health.previous_secret_expires_at,
            custom_headers: s
                .custom_headers
                .into_iter()
                .map(|h| CustomHeader {
                    name: h.name,
                    value: HIDDEN.to_owned(),
                })
                .collect(),
            created_at: s.created_at,
        }
    }
}

/// The tenant's session a webhook route names in its path (`{session}`), as a handler
/// argument: the caller's key has the row's scope (checked by `TenantCaller`'s extractor, see
/// `http::extract::requiring`), the tenant owns the session and the key may use it; 404
/// otherwise, exactly as for a session that does not exist. The quota headers are stamped on
/// the answer, errors included, by `http::quota_headers`.
pub struct OnSession {
    pub caller: TenantCaller,
    pub state: web::Data<AppState>,
    pub name: SessionName,
    upstream: UpstreamSession,
}

impl FromRequest for OnSession {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Extracted together, as a handler's own arguments are: the path, the caller, the state.
        let parts = <(web::Path<SessionPath>, TenantCaller, web::Data<AppState>)>::from_request(
            req, payload,
        );
        Box::pin(async move {
            let (path, caller, state) = parts.await?;
            let (name, upstream) = crate::http::tenant::ownership::owned_session(
                &state.sessions,
                &caller,
                &path.session,
            )
            .await?;
            Ok(Self {
                caller,
                state,
                name,
                upstream,
            })
        })
    }
}

impl OnSession {
    fn target(&self) -> SessionRef<'_> {
        SessionRef {
            tenant: &self.caller.tenant,
            mode: self.caller.key.mode,
            name: self.name.as_str(),
            upstream: &self.upstream,
        }
    }

    fn registrar(&self) -> Registrar<'_> {
        Registrar {
            db: &self.state.db,
            upstreams: self.state.upstreams(),
            quotas: &self.state.quotas,
            relay: &self.state.relay,
        }
    }
}

pub async fn list(on: OnSession) -> Result<HttpResponse, ApiError> {
    let lists = &on.state.relay.subscriptions;
    let (tenant, mode) = (on.caller.tenant.id, on.caller.key.mode);
    let mut by_session = views_by_session(lists, tenant, mode, Some(on.name.as_str())).await?;
    let views = by_session.remove(on.name.as_str()).unwrap_or_default();
    Ok(HttpResponse::Ok().json(views))
}

/// A registration's body (no body is `{}`, which the route table then refuses for its missing
/// `webhookUrl`).
async fn parse_new(json: Option<Value>, allow_private: bool) -> Result<NewSubscription, ApiError> {
    let json = json.unwrap_or_else(|| Value::Object(Default::default()));
    parse_subscription(&json, allow_private).await
}

/// One subscription in the hosted API's shape (`webhookUrl`, `events`, `hmacKey`, `retries`,
/// `customHeaders`, and the gateway's `signing` and `secret`), checked as
/// `POST /v1/sessions/{session}/webhooks` checks it: the route table's types, bounds, and the
/// target's address as it resolves now.
pub async fn parse_subscription(
    json: &Value,
    allow_private: bool,
) -> Result<NewSubscription, ApiError> {
    schema::validate(json, ADD_WEBHOOK).map_err(|e| ApiError::bad_request(e.0))?;
    let url = parse_url(
        json["webhookUrl"].as_str().unwrap_or_default(),
        allow_private,
    )
    .await?;
    let events: Option<Vec<String>> = json
        .get("events")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let events = events::parse_events(events.as_deref())?;
    let signing = parse_signing(json)?;
    let retries = RetryPolicy::from_request(json.get("retries"))?;
    let custom_headers = parse_custom_headers(json.get("customHeaders"))?;
    Ok(NewSubscription {
        url,
        events,
        signing,
        retries,
        custom_headers,
    })
}

/// The tenant's subscriptions in `mode` per session name (from `lists`, one cached list per
/// tenant and mode): all its sessions', or one's.
pub async fn views_by_session(
    lists: &SubscriptionLists,
    tenant: Uuid,
    mode: Mode,
    session: Option<&str>,
) -> Result<HashMap<String, Vec<WebhookView>>, ApiError> {
    let mut by_session = HashMap::<String, Vec<WebhookView>>::new();
    let found = lists.list(tenant, mode, session).await?;
    for subscription in found {
        by_session
            .entry(subscription.session_name.clone())
            .or_default()
            .push(subscription.into());
    }
    Ok(by_session)
}

/// A `webhookUrl`, judged by what it is and what it resolves to now (it is judged again at
/// every delivery). A name that does not resolve is refused exactly like one that resolves
/// inside, so registering tells a tenant nothing about the organisation's DNS.
async fn parse_url(raw: &str, allow_private: bool) -> Result<Url, ApiError> {
    if raw.len() > MAX_URL_LEN {
        return Err(ApiError::bad_request(format!(
            "webhookUrl must be at most {MAX_URL_LEN} characters"
        )));
    }
    let refused = |e: TargetRefused| ApiError::bad_request(e.to_string());
    let url = ssrf::parse_target(raw, allow_private).map_err(refused)?;
    if !allow_private {
        ssrf::resolve_within(&url, allow_private, ssrf::RESOLVE_TIMEOUT)
            .await
            .map_err(refused)?;
    }
    Ok(url)
}

/// `hmacKey`, which the route table has already checked is a string when given.
fn parse_hmac_key(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw {
        None => Ok(None),
        Some("") => Err(ApiError::bad_request("hmacKey must not be empty")),
        Some(k) if k.len() > MAX_HMAC_KEY_BYTES => Err(ApiError::bad_request(format!(
            "hmacKey must be at most {MAX_HMAC_KEY_BYTES} bytes"
        ))),
        Some(k) => Ok(Some(k.to_owned())),
    }
}

/// `signing` with its key: `hmac-sha512` (the default) takes an optional `hmacKey`;
/// `standard` takes an optional `secret` (`whsec_...`), one being generated when none is given.
fn parse_signing(json: &Value) -> Result<Signing, ApiError> {
    let scheme = match json.get("signing") {
        None | Some(Value::Null) => Scheme::default(),
        Some(Value::String(name)) => name.parse::<Scheme>()?,
        Some(_) => return Err(ApiError::bad_request("signing must be a string")),
    };
    let hmac_key = json.get("hmacKey").filter(|v| !v.is_null());
    let secret = match json.get("secret") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Some(raw.as_str()),
        Some(_) => return Err(ApiError::bad_request("secret must be a string")),
    };
    match scheme {
        Scheme::HmacSha512 if secret.is_some() => Err(ApiError::bad_request(
            "secret is for \"signing\": \"standard\"; hmac-sha512 signs with hmacKey",
        )),
        Scheme::HmacSha512 => Ok(Signing::HmacSha512 {
            key: parse_hmac_key(hmac_key.and_then(Value::as_str))?,
        }),
        Scheme::Standard if hmac_key.is_some() => Err(ApiError::bad_request(
            "hmacKey is for \"signing\": \"hmac-sha512\"; standard signs with secret",
        )),
        Scheme::Standard => Ok(match secret {
            Some(raw) => Signing::Standard {
                secret: WebhookSecret::parse(raw)?,
                generated: false,
            },
            None => Signing::Standard {
                secret: WebhookSecret::generate(),
                generated: true,
            },
        }),
    }
}

/// `customHeaders`, bounded (they go out with every delivery) and never one the gateway sets.
fn parse_custom_headers(raw: Option<&Value>) -> Result<Vec<CustomHeader>, ApiError> {
    let bad = |why: String| ApiError::bad_request(format!("customHeaders: {why}"));
    let Some(raw) = raw.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    if raw.as_array().is_some_and(|a| a.len() > MAX_CUSTOM_HEADERS) {
        return Err(bad(format!("at most {MAX_CUSTOM_HEADERS} headers")));
    }
    let headers: Vec<CustomHeader> =
        serde_json::from_value(raw.clone()).map_err(|e| bad(e.to_string()))?;
    let total: usize = headers.iter().map(|h| h.name.len() + h.value.len()).sum();
    if total > MAX_CUSTOM_HEADERS_BYTES {
        return Err(bad(format!(
            "at most {MAX_CUSTOM_HEADERS_BYTES} bytes of names and values in all"
        )));
    }
    for h in &headers {
        check_custom_header(h).map_err(bad)?;
    }
    Ok(headers)
}

fn check_custom_header(h: &CustomHeader) -> Result<(), String> {
    if h.name.len() > MAX_HEADER_NAME_BYTES {
        return Err(format!(
            "a header name is at most {MAX_HEADER_NAME_BYTES} bytes"
        ));
    }
    if h.value.len() > MAX_HEADER_VALUE_BYTES {
        return Err(format!(
            "the value of `{}` is longer than {MAX_HEADER_VALUE_BYTES} bytes",
            h.name
        ));
    }
    let name = HeaderName::from_bytes(h.name.as_bytes())
        .map_err(|_| format!("`{}` is not a valid header name", h.name))?;
    let ours = SIGNATURE_PREFIXES
        .iter()
        .any(|p| name.as_str().starts_with(p));
    if RESERVED_HEADERS.contains(&name.as_str()) || ours {
        return Err(format!(
            "`{}` is set by the gateway and cannot be overridden",
            h.name
        ));
    }
    HeaderValue::from_str(&h.value)
        .map_err(|_| format!("the value of `{}` is not a valid header value", h.name))?;
    Ok(())
}

/// Registers (or, for a URL the session already has, replaces) a webhook. When this answers
/// 201 the upstream already sends the events it needs to the gateway.
pub async fn add(on: OnSession, body: Unread) -> Result<HttpResponse, ApiError> {
    let new = parse_new(body.json().await?, on.state.relay.allow_private).await?;
    let new = std::slice::from_ref(&new);
    let mut added = subscriptions::subscribe(&on.registrar(), &on.target(), new).await?;
    let mut view = WebhookView::from(added.remove(0));
    view.secret = new[0].signing.generated_secret().map(str::to_owned);
    Ok(HttpResponse::Created().json(view))
}

/// The tenant's session that subscriptions are added to.
pub struct SessionTarget<'a> {
    pub caller: &'a TenantCaller,
    pub name: &'a SessionName,
    pub upstream: &'a UpstreamSession,
}

/// `config.webhooks` of a created or started session, subscribed as
/// `POST /v1/sessions/{session}/webhooks` would: when this returns the upstream already sends
/// the events they need to the gateway.
pub async fn subscribe(
    registrar: &Registrar<'_>,
    target: &SessionTarget<'_>,
    new: &[NewSubscription],
) -> Result<Vec<WebhookView>, ApiError> {
    let session = SessionRef {
        tenant: &target.caller.tenant,
        mode: target.caller.key.mode,
        name: target.name.as_str(),
        upstream: target.upstream,
    };
    let added = subscriptions::subscribe(registrar, &session, new).await?;
    Ok(added.into_iter().map(Into::into).collect())
}

/// Removes the webhook named by `webhookUrl` (JSON body or query), or all of the session's.
pub async fn remove(
    on: OnSession,
    req: HttpRequest,
    body: Unread,
) -> Result<HttpResponse, ApiError> {
    let from_body = match body.json().await? {
        Some(json) => match json.get("webhookUrl") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ApiError::bad_request("webhookUrl must be a string")),
        },
        None => None,
    };
    let raw = from_body.or_else(|| query_param(req.query_string(), "webhookUrl"));
    // Stored URLs are normalised by parsing; the same is done to the one named here.
    let url = raw.map(|r| Url::parse(&r).map(String::from).unwrap_or(r));
    let removed = subscriptions::unsubscribe(&on.registrar(), &on.target(), url.as_deref()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "removed": removed })))
}

#[derive(Debug, Deserialize)]
pub struct DeliveriesQuery {
    status: Option<String>,
    limit: Option<i64>,
}

/// One delivery: an event on its way to one webhook.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: Uuid,
    /// The upstream event's `id`.
    pub event_id: String,
    pub event: String,
    pub webhook_url: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// The receiver's HTTP status on the last attempt, when it answered.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed: for tenants only whether the receiver answered (and with
    /// what) or could not be reached; the admin listing shows the raw error.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl DeliveryView {
    fn new(d: Delivery, last_error: Option<String>) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            event: d.event,
            webhook_url: d.webhook_url,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            last_status_code: d.last_status,
            last_error,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            last_attempt_at: d.last_attempt_at,
            created_at: d.created_at,
            finished_at: d.finished_at,
        }
    }

    /// What a tenant is told of a failed attempt: whether its receiver answered, and with what
    /// status; never how a connection failed (refused, reset, timed out, TLS...), which would
    /// make the gateway a port scanner with its own egress address. Admins see the raw error.
    fn for_tenant(d: Delivery) -> Self {
        let shown = d.last_error.as_ref().map(|_| match d.last_status {
            Some(status) => format!("the receiver answered HTTP {status}"),
            None => "the receiver could not be reached".to_owned(),
        });
        Self::new(d, shown)
    }
}

/// The listing's `status` and `limit`, checked.
fn filter(status: Option<&str>, limit: Option<i64>) -> Result<Filter, ApiError> {
    let status = status
        .map(str::parse::<DeliveryStatus>)
        .transpose()
        .map_err(ApiError::from)?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok(Filter { status, limit })
}

/// Recent deliveries of the session's events, newest first (gateway addition).
#[utoipa::path(
    get,
    path = "/v1/sessions/{session}/webhooks/deliveries",
    tag = "Webhooks",
    operation_id = "listWebhookDeliveries",
    params(
        SessionPath,
        ("status" = Option<String>, Query, description = "`pending`, `delivered` or `failed`"),
        ("limit" = Option<i64>, Query, description = "At most this many (1 to 200, default 50)"),
    ),
    responses(
        (status = 200, description = "Recent deliveries, newest first", body = [DeliveryView]),
        BadDeliveryFilter,
        (status = 403, description = "The key lacks `webhooks:read`", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
    )
)]
pub async fn deliveries(
    query: web::Query<DeliveriesQuery>,
    on: OnSession,
) -> Result<HttpResponse, ApiError> {
    let filter = filter(query.status.as_deref(), query.limit)?;
    let (db, tenant, mode) = (&on.state.db, on.caller.tenant.id, on.caller.key.mode);
    let rows = deliveries::for_session(db, tenant, mode, on.name.as_str(), filter).await?;
    let views: Vec<DeliveryView> = rows.into_iter().map(DeliveryView::for_tenant).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// Sends a delivered or failed delivery again, from a fresh set of attempts (gateway addition).
#[utoipa::path(
    post,
    path = "/v1/sessions/{session}/webhooks/deliveries/{id}/redeliver",
    tag = "Webhooks",
    operation_id = "redeliverWebhook",
    params(SessionPath, DeliveryId),
    responses(
        (status = 202, description = "Queued for delivery again", body = DeliveryView),
        WritesWebhooks,
        (status = 404, description = "No such session or delivery", body = ErrorBody),
        DeliveryPending,
    )
)]
pub async fn redeliver(
    on: OnSession,
    path: web::Path<DeliveryId>,
) -> Result<HttpResponse, ApiError> {
    let (db, tenant, mode) = (&on.state.db, on.caller.tenant.id, on.caller.key.mode);
    let delivery = subscriptions::redeliver(db, tenant, mode, on.name.as_str(), &path.id).await?;
    Ok(HttpResponse::Accepted().json(DeliveryView::for_tenant(delivery)))
}

#[derive(Debug, Deserialize)]
pub struct AdminDeliveriesQuery {
    tenant: Option<Uuid>,
    status: Option<String>,
    limit: Option<i64>,
}

/// A delivery with its owner, for admins.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminDeliveryView {
    pub tenant_id: Uuid,
    pub session_name: String,
    #[serde(flatten)]
    pub delivery: DeliveryView,
}

/// Recent webhook deliveries of every tenant, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/webhooks/deliveries",
    tag = "Admin",
    operation_id = "adminListWebhookDeliveries",
    params(
        ("tenant" = Option<Uuid>, Query, description = "Only this tenant's"),
        ("status" = Option<String>, Query, description = "`pending`, `delivered` or `failed`"),
        ("limit" = Option<i64>, Query, description = "At most this many (1 to 200, default 50)"),
    ),
    responses(
        (status = 200, description = "Recent deliveries, newest first", body = [AdminDeliveryView]),
        BadDeliveryFilter,
    )
)]
pub async fn admin_deliveries(
    _admin: AdminCaller,
    query: web::Query<AdminDeliveriesQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let filter = filter(query.status.as_deref(), query.limit)?;
    let rows = deliveries::all(&state.db, query.tenant, filter).await?;
    let views: Vec<AdminDeliveryView> = rows.into_iter().map(AdminDeliveryView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

impl From<Delivery> for AdminDeliveryView {
    /// Admins see the raw error of the last attempt.
    fn from(mut d: Delivery) -> Self {
        Self {
            tenant_id: d.tenant_id,
            session_name: std::mem::take(&mut d.session_name),
            delivery: {
                let raw = d.last_error.clone();
                DeliveryView::new(d, raw)
            },
        }
    }
}

/// Sends any tenant's delivered or failed delivery again, as the tenant's redelivery does.
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant_id}/sessions/{session}/webhooks/deliveries/{id}/redeliver",
    tag = "Admin",
    operation_id = "adminRedeliverWebhook",
    params(
        ("tenant_id" = Uuid, Path, description = "The tenant's id"),
        ("session" = String, Path, description = "The tenant's name for the session", example = "default"),
        ("id" = String, Path, description = "The delivery's id"),
    ),
    responses(
        (status = 202, description = "Queued for delivery again", body = AdminDeliveryView),
        (status = 404, description = "No such delivery for this tenant and session", body = ErrorBody),
        DeliveryPending,
    )
)]
pub async fn admin_redeliver(
    _admin: AdminCaller,
    path: web::Path<(Uuid, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, session, id) = path.into_inner();
    // The admin views list live deliveries; a test key's are its tenant's own business.
    let delivery = subscriptions::redeliver(&state.db, tenant, Mode::Live, &session, &id).await?;
    Ok(HttpResponse::Accepted().json(AdminDeliveryView::from(delivery)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;
    use actix_web::test::TestRequest;

    async fn parse(body: Value, allow_private: bool) -> Result<NewSubscription, ApiError> {
        let req = TestRequest::post()
            .insert_header(("content-type", "application/json"))
            .to_http_request();
        let json = crate::http::body::json(&req, body.to_string().as_bytes())?;
        parse_new(json, allow_private).await
    }

    #[actix_web::test]
    async fn defaults_follow_the_seed() {
        let new = parse(
            serde_json::json!({"webhookUrl": "https://8.8.8.8/hook"}),
            false,
        )
        .await
        .unwrap();
        assert_eq!(new.events, vec!["message"]);
        assert_eq!(new.retries, RetryPolicy::default());
        assert_eq!(new.signing, Signing::HmacSha512 { key: None });
        assert!(new.custom_headers.is_empty());
    }

    #[actix_web::test]
    async fn unknown_events_are_refused_with_the_valid_ones() {
        let err = parse(
            serde_json::json!({"webhookUrl": "https://8.8.8.8/", "events": ["message", "nope"]}),
            false,
        )
        .await
        .err()
        .unwrap();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(err.message().contains("nope") && err.message().contains("message.reaction"));
    }

    #[actix_web::test]
    async fn urls_must_be_http_and_not_internal_unless_allowed() {
        for url in [
            "ftp://example.com/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:8080/hook",
            "http://[fd00::1]/hook",
            "http://localhost/hook",
        ] {
            let err = parse(serde_json::json!({ "webhookUrl": url }), false)
                .await
                .err()
                .unwrap_or_else(|| panic!("{url} accepted"));
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{url}");
        }
        assert!(parse(
            serde_json::json!({"webhookUrl": "http://127.0.0.1:8080/hook"}),
            true
        )
        .await
        .is_ok());
    }

    #[actix_web::test]
    async fn gateway_headers_cannot_be_overridden() {
        for name in ["X-Webhook-Hmac", "Content-Type", "Host", "bad header"] {
            let err = parse(
                serde_json::json!({"webhookUrl": "https://8.8.8.8/",
                    "customHeaders": [{"name": name, "value": "x"}]}),
                false,
            )
            .await
            .err()
            .unwrap_or_else(|| panic!("{name} accepted"));
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{name}");
        }
        let ok = parse(
            serde_json::json!({"webhookUrl": "https://8.8.8.8/",
                "customHeaders": [{"name": "Authorization", "value": "Bearer t"}]}),
            false,
        )
        .await
        .unwrap();
        assert_eq!(ok.custom_headers[0].value, "Bearer t");
    }

    #[test]
    fn every_header_the_gateway_signs_with_is_reserved() {
        use crate::services::webhooks::signing::{
            ALGORITHM_HEADER, HMAC_HEADER, REQUEST_ID_HEADER, STANDARD_ID_HEADER,
            STANDARD_SIGNATURE_HEADER, STANDARD_TIMESTAMP_HEADER, TIMESTAMP_HEADER,
        };
        for h in [
            HMAC_HEADER,
            ALGORITHM_HEADER,
            REQUEST_ID_HEADER,
            TIMESTAMP_HEADER,
            STANDARD_ID_HEADER,
            STANDARD_SIGNATURE_HEADER,
            STANDARD_TIMESTAMP_HEADER,
        ] {
            assert!(SIGNATURE_PREFIXES.iter().any(|p| h.starts_with(p)), "{h}");
        }
    }

    #[test]
    fn views_hide_header_values() {
        let view = WebhookView::from(Subscription {
            id: Uuid::nil(),
            session_name: "default".to_owned(),
            url: "https://8.8.8.8/".to_owned(),
            events: vec!["message".to_owned()],
            signing: Scheme::HmacSha512,
            signed: true,
            health: Default::default(),
            retries: RetryPolicy::default(),
            custom_headers: vec![CustomHeader {
                name: "Authorization".into(),
                value: "Bearer secret".into(),
            }],
            created_at: Utc::now(),
        });
        let json = serde_json::to_string(&view).unwrap();
        assert!(!json.contains("secret"), "{json}");
        assert!(json.contains(r#""signed":true"#));
    }

    fn delivery(last_status: Option<i32>, last_error: Option<&str>) -> Delivery {
        Delivery {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            session_name: "default".into(),
            event_id: "evt_1".into(),
            event: "message".into(),
            webhook_url: "https://8.8.8.8/".into(),
            status: DeliveryStatus::Failed,
            attempts: 1,
            last_status,
            last_error: last_error.map(str::to_owned),
            next_attempt_at: Utc::now(),
            last_attempt_at: None,
            created_at: Utc::now(),
            finished_at: None,
        }
    }

    #[test]
    fn tenants_see_only_whether_the_receiver_answered() {
        let refused = delivery(None, Some("connect to 10.0.0.7:80 refused"));
        let shown = DeliveryView::for_tenant(refused).last_error;
        assert_eq!(shown.as_deref(), Some("the receiver could not be reached"));
        let answered = delivery(Some(503), Some("the receiver answered 503"));
        let shown = DeliveryView::for_tenant(answered).last_error;
        assert_eq!(shown.as_deref(), Some("the receiver answered HTTP 503"));
        assert_eq!(
            DeliveryView::for_tenant(delivery(None, None)).last_error,
            None
        );
        let view = DeliveryView::for_tenant(delivery(None, None));
        assert!(
            view.next_attempt_at.is_none(),
            "only pending deliveries are due"
        );
    }

    #[test]
    fn listings_take_a_known_status_and_a_bounded_limit() {
        let f = filter(Some("failed"), None).unwrap();
        assert_eq!((f.status, f.limit), (Some(DeliveryStatus::Failed), 50));
        for (status, limit) in [(Some("done"), None), (None, Some(0)), (None, Some(201))] {
            let e = filter(status, limit).err().unwrap();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        }
    }
}
