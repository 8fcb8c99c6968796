//! The tenant's webhook routes under `/v1/sessions/{session}/webhooks`: register (POST), list
//! (GET, our addition, scope `webhooks:read`), remove (DELETE), recent deliveries and
//! redelivery. Every answer carries the tenant's quota headers, like forwarded calls.

use crate::db::constraint_violated;
use crate::domain::events;
use crate::domain::Scope;
use crate::domain::{SessionName, UpstreamSession};
use crate::http::body::{self, json as json_body};
use crate::http::error::ApiError;
use crate::http::extract::{AdminCaller, TenantCaller};
use crate::http::quota_headers::QuotaHeaders;
use crate::http::routes::endpoints::ADD_WEBHOOK;
use crate::http::routes::schema;
use crate::http::tenant::rewrite::query_param;
use crate::http::tenant::ProxyState;
use crate::services::upstream::UpstreamClient;
use crate::services::webhooks::outbox::{CustomHeader, NOTIFY_CHANNEL};
use crate::services::webhooks::policy::RetryPolicy;
use crate::services::webhooks::registration::{self, IngressTarget};
use crate::services::webhooks::ssrf::{self, TargetRefused};
use crate::services::webhooks::Relay;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{Postgres, Transaction};
use url::Url;
use uuid::Uuid;

/// Webhooks one session may have; each event is delivered once per webhook.
pub const MAX_PER_SESSION: i64 = 20;
const MAX_URL_LEN: usize = 2048;
// Every delivery loads and sends a subscription's key and headers, so they are bounded.
const MAX_HMAC_KEY_BYTES: usize = 256;
const MAX_CUSTOM_HEADERS: usize = 20;
const MAX_HEADER_NAME_BYTES: usize = 64;
const MAX_HEADER_VALUE_BYTES: usize = 1024;
/// Names and values of all of a subscription's custom headers together.
const MAX_CUSTOM_HEADERS_BYTES: usize = 8 * 1024;
/// The gateway's signature and delivery headers (`X-Webhook-Hmac`, `-Hmac-Algorithm`,
/// `-Request-Id`, `-Timestamp`) all start so; a tenant may set none of them.
const SIGNATURE_PREFIX: &str = "x-webhook-";
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

/// The OpenAPI description of the relay's own routes (the three webhook rows of the route table
/// are documented from the table).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(deliveries, redeliver, admin_deliveries),
    components(schemas(DeliveryView, AdminDeliveryView))
)]
pub struct WebhooksApi;

/// A webhook as the tenant sees it: never its `hmacKey`, nor its headers' values.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub id: Uuid,
    pub webhook_url: String,
    pub events: Vec<String>,
    /// Whether deliveries are signed (an `hmacKey` was given); the key itself is never shown.
    pub signed: bool,
    pub retries: RetryPolicy,
    pub custom_headers: Vec<CustomHeader>,
    pub created_at: DateTime<Utc>,
}

/// A subscription as [`SUBSCRIPTION_COLUMNS`] select it.
#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    id: Uuid,
    url: String,
    events: Vec<String>,
    signed: bool,
    retry_policy: String,
    retry_delay_seconds: i32,
    retry_attempts: i32,
    custom_headers: sqlx::types::Json<Vec<CustomHeader>>,
    created_at: DateTime<Utc>,
}

impl From<SubscriptionRow> for WebhookView {
    fn from(r: SubscriptionRow) -> Self {
        Self {
            id: r.id,
            webhook_url: r.url,
            events: r.events,
            signed: r.signed,
            retries: RetryPolicy {
                policy: crate::services::webhooks::policy::Backoff::parse(&r.retry_policy)
                    .unwrap_or(crate::services::webhooks::policy::Backoff::Exponential),
                delay_seconds: r.retry_delay_seconds,
                attempts: r.retry_attempts,
            },
            custom_headers: r
                .custom_headers
                .0
                .into_iter()
                .map(|h| CustomHeader {
                    name: h.name,
                    value: HIDDEN.to_owned(),
                })
                .collect(),
            created_at: r.created_at,
        }
    }
}

const SUBSCRIPTION_COLUMNS: &str = "id, url, events, hmac_key IS NOT NULL AS signed, \
     retry_policy, retry_delay_seconds, retry_attempts, custom_headers, created_at";

/// Adds the quota headers every `/v1` answer carries.
fn answer(
    result: Result<HttpResponse, ApiError>,
    proxy: &ProxyState,
    caller: &TenantCaller,
) -> HttpResponse {
    let mut response = result.unwrap_or_else(|e| actix_web::ResponseError::error_response(&e));
    for (name, value) in proxy.quotas.headers(&caller.tenant, None).iter() {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// The session the path names, if the caller owns it and its key may use it; 404 otherwise,
/// exactly as for a session that does not exist.
async fn owned(
    proxy: &ProxyState,
    caller: &TenantCaller,
    name: &str,
) -> Result<(SessionName, UpstreamSession), ApiError> {
    let not_found = || ApiError::not_found(format!("session \"{name}\" not found"));
    let parsed = SessionName::parse(name).map_err(|_| not_found())?;
    if !caller.may_use_session(name) {
        return Err(not_found());
    }
    let upstream = proxy
        .sessions
        .resolve(caller.tenant.id, &parsed)
        .await?
        .ok_or_else(not_found)?;
    Ok((parsed, upstream))
}

pub async fn list(
    session: web::Path<String>,
    caller: TenantCaller,
    proxy: web::Data<ProxyState>,
) -> HttpResponse {
    let result = async {
        caller.require(Scope::WebhooksRead)?;
        let (name, _) = owned(&proxy, &caller, &session).await?;
        let rows: Vec<SubscriptionRow> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions \
             WHERE tenant_id = $1 AND session_name = $2 ORDER BY created_at, id"
        ))
        .bind(caller.tenant.id)
        .bind(name.as_str())
        .fetch_all(&proxy.pool)
        .await?;
        let views: Vec<WebhookView> = rows.into_iter().map(Into::into).collect();
        Ok(HttpResponse::Ok().json(views))
    }
    .await;
    answer(result, &proxy, &caller)
}

/// A registration request, checked.
pub struct NewWebhook {
    url: Url,
    events: Vec<String>,
    hmac_key: Option<String>,
    retries: RetryPolicy,
    custom_headers: Vec<CustomHeader>,
}

async fn parse_new(
    req: &HttpRequest,
    body: &[u8],
    allow_private: bool,
) -> Result<NewWebhook, ApiError> {
    let json = json_body(req, body)?.unwrap_or_else(|| Value::Object(Default::default()));
    parse_subscription(&json, allow_private).await
}

/// One subscription in the hosted API's shape (`webhookUrl`, `events`, `hmacKey`, `retries`,
/// `customHeaders`), checked as `POST /v1/sessions/{session}/webhooks` checks it: bounds, and
/// the target's address as it resolves now.
pub async fn parse_subscription(json: &Value, allow_private: bool) -> Result<NewWebhook, ApiError> {
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
    let hmac_key = parse_hmac_key(json.get("hmacKey"))?;
    let retries = RetryPolicy::from_request(json.get("retries"))?;
    let custom_headers = parse_custom_headers(json.get("customHeaders"))?;
    Ok(NewWebhook {
        url,
        events,
        hmac_key,
        retries,
        custom_headers,
    })
}

/// The tenant's subscriptions per session name, in one query: all its sessions', or one's.
pub async fn views_by_session(
    pool: &crate::db::Db,
    tenant: Uuid,
    session: Option<&str>,
) -> Result<std::collections::HashMap<String, Vec<WebhookView>>, ApiError> {
    #[derive(sqlx::FromRow)]
    struct Named {
        session_name: String,
        #[sqlx(flatten)]
        row: SubscriptionRow,
    }
    let rows: Vec<Named> = sqlx::query_as(&format!(
        "SELECT session_name, {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions \
         WHERE tenant_id = $1 AND ($2::text IS NULL OR session_name = $2) \
         ORDER BY created_at, id"
    ))
    .bind(tenant)
    .bind(session)
    .fetch_all(pool)
    .await?;
    let mut by_session = std::collections::HashMap::<String, Vec<WebhookView>>::new();
    for Named { session_name, row } in rows {
        by_session.entry(session_name).or_default().push(row.into());
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

fn parse_hmac_key(raw: Option<&Value>) -> Result<Option<String>, ApiError> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(k)) if k.is_empty() => {
            Err(ApiError::bad_request("hmacKey must not be empty"))
        }
        Some(Value::String(k)) if k.len() > MAX_HMAC_KEY_BYTES => Err(ApiError::bad_request(
            format!("hmacKey must be at most {MAX_HMAC_KEY_BYTES} bytes"),
        )),
        Some(Value::String(k)) => Ok(Some(k.clone())),
        Some(_) => Err(ApiError::bad_request("hmacKey must be a string")),
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
    if RESERVED_HEADERS.contains(&name.as_str()) || name.as_str().starts_with(SIGNATURE_PREFIX) {
        return Err(format!(
            "`{}` is set by the gateway and cannot be overridden",
            h.name
        ));
    }
    HeaderValue::from_str(&h.value)
        .map_err(|_| format!("the value of `{}` is not a valid header value", h.name))?;
    Ok(())
}

async fn lock_session(
    conn: &mut sqlx::PgConnection,
    upstream: &UpstreamSession,
) -> Result<(), ApiError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('wagw.webhooks'), hashtext($1))")
        .bind(upstream.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Brings the upstream's registration for the session in step with its subscriptions as `tx`
/// leaves them, then commits.
async fn sync_and_commit(
    mut tx: Transaction<'static, Postgres>,
    proxy: &ProxyState,
    client: &UpstreamClient,
    relay: &Relay,
    caller: &TenantCaller,
    name: &SessionName,
    upstream: &UpstreamSession,
) -> Result<(), ApiError> {
    let target = IngressTarget {
        public_base: &relay.public_base,
    };
    registration::sync(
        &proxy.pool,
        &mut tx,
        client,
        &proxy.quotas,
        &caller.tenant,
        name.as_str(),
        upstream,
        &target,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Registers (or, for a URL the session already has, replaces) a webhook. When this answers
/// 201 the upstream already sends the events it needs to the gateway.
pub async fn add(
    req: HttpRequest,
    session: web::Path<String>,
    payload: web::Payload,
    caller: TenantCaller,
    proxy: web::Data<ProxyState>,
    client: web::Data<UpstreamClient>,
    relay: web::Data<Relay>,
) -> HttpResponse {
    let result = async {
        caller.require(Scope::WebhooksWrite)?;
        let (name, upstream) = owned(&proxy, &caller, &session).await?;
        let body = body::read(&req, payload, body::limits::PLAIN).await?;
        let new = parse_new(&req, &body, relay.allow_private).await?;
        let target = SessionTarget {
            caller: &caller,
            name: &name,
            upstream: &upstream,
        };
        let mut views =
            subscribe(&proxy, &client, &relay, &target, std::slice::from_ref(&new)).await?;
        Ok(HttpResponse::Created().json(views.remove(0)))
    }
    .await;
    answer(result, &proxy, &caller)
}

/// The tenant's session that subscriptions are added to.
pub struct SessionTarget<'a> {
    pub caller: &'a TenantCaller,
    pub name: &'a SessionName,
    pub upstream: &'a UpstreamSession,
}

/// Inserts checked subscriptions for a session (one whose URL the session already has replaces
/// it), at most [`MAX_PER_SESSION`] in all, and brings the upstream's registration in step:
/// when this returns the upstream already sends the events they need to the gateway. Serves
/// `POST /v1/sessions/{session}/webhooks` and `config.webhooks` of a created or started session.
pub async fn subscribe(
    proxy: &ProxyState,
    client: &UpstreamClient,
    relay: &Relay,
    target: &SessionTarget<'_>,
    subscriptions: &[NewWebhook],
) -> Result<Vec<WebhookView>, ApiError> {
    let mut tx = proxy.pool.begin().await?;
    lock_session(&mut tx, target.upstream).await?;
    let mut views = Vec::with_capacity(subscriptions.len());
    for new in subscriptions {
        let row = insert_subscription(&mut tx, target.caller.tenant.id, target.name, new).await?;
        views.push(WebhookView::from(row));
    }
    let (caller, name, upstream) = (target.caller, target.name, target.upstream);
    sync_and_commit(tx, proxy, client, relay, caller, name, upstream).await?;
    Ok(views)
}

/// One subscription, under the session's lock held by `tx`.
async fn insert_subscription(
    tx: &mut Transaction<'static, Postgres>,
    tenant: Uuid,
    name: &SessionName,
    new: &NewWebhook,
) -> Result<SubscriptionRow, ApiError> {
    let others: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_subscriptions WHERE tenant_id = $1 AND session_name = $2 AND url <> $3",
    )
    .bind(tenant)
    .bind(name.as_str())
    .bind(new.url.as_str())
    .fetch_one(&mut **tx)
    .await?;
    if others >= MAX_PER_SESSION {
        return Err(ApiError::conflict(format!(
            "a session may have at most {MAX_PER_SESSION} webhooks; remove one first"
        )));
    }
    sqlx::query_as(&format!(
        "INSERT INTO webhook_subscriptions (id, tenant_id, session_name, url, events, hmac_key, \
             retry_policy, retry_delay_seconds, retry_attempts, custom_headers) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT ON CONSTRAINT webhook_subscriptions_target_key DO UPDATE SET \
             events = EXCLUDED.events, hmac_key = EXCLUDED.hmac_key, retry_policy = EXCLUDED.retry_policy, \
             retry_delay_seconds = EXCLUDED.retry_delay_seconds, retry_attempts = EXCLUDED.retry_attempts, \
             custom_headers = EXCLUDED.custom_headers, updated_at = now() \
         RETURNING {SUBSCRIPTION_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(name.as_str())
    .bind(new.url.as_str())
    .bind(&new.events)
    .bind(&new.hmac_key)
    .bind(new.retries.policy.as_str())
    .bind(new.retries.delay_seconds)
    .bind(new.retries.attempts)
    .bind(sqlx::types::Json(&new.custom_headers))
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| {
        if constraint_violated(&e, "webhook_subscriptions_tenant_id_fkey") {
            ApiError::unauthorized("invalid API key")
        } else {
            e.into()
        }
    })
}

/// Removes the webhook named by `webhookUrl` (JSON body or query), or all of the session's.
pub async fn remove(
    req: HttpRequest,
    session: web::Path<String>,
    payload: web::Payload,
    caller: TenantCaller,
    proxy: web::Data<ProxyState>,
    client: web::Data<UpstreamClient>,
    relay: web::Data<Relay>,
) -> HttpResponse {
    let result = async {
        caller.require(Scope::WebhooksWrite)?;
        let (name, upstream) = owned(&proxy, &caller, &session).await?;
        let body = body::read(&req, payload, body::limits::PLAIN).await?;
        let from_body = match json_body(&req, &body)? {
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

        let mut tx = proxy.pool.begin().await?;
        lock_session(&mut tx, &upstream).await?;
        let removed = sqlx::query(
            "DELETE FROM webhook_subscriptions WHERE tenant_id = $1 AND session_name = $2 \
             AND ($3::text IS NULL OR url = $3)",
        )
        .bind(caller.tenant.id)
        .bind(name.as_str())
        .bind(&url)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if let (Some(url), 0) = (&url, removed) {
            return Err(ApiError::not_found(format!(
                "no webhook {url} on session \"{name}\""
            )));
        }
        sync_and_commit(tx, &proxy, &client, &relay, &caller, &name, &upstream).await?;
        Ok(HttpResponse::Ok().json(serde_json::json!({ "removed": removed })))
    }
    .await;
    answer(result, &proxy, &caller)
}

#[derive(Debug, Deserialize)]
pub struct DeliveriesQuery {
    status: Option<String>,
    limit: Option<i64>,
}

/// One delivery: an event on its way to one webhook.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
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

/// What a tenant is told of a failed attempt: whether its receiver answered, and with what
/// status; never how a connection failed (refused, reset, timed out, TLS...), which would make
/// the gateway a port scanner with its own egress address. Admins see the raw error.
const TENANT_ERROR: &str = "CASE WHEN d.last_error IS NULL THEN NULL \
       WHEN d.last_status IS NOT NULL THEN 'the receiver answered HTTP ' || d.last_status \
       ELSE 'the receiver could not be reached' END";
const RAW_ERROR: &str = "d.last_error";

/// The query behind [`DeliveryView`]: `owner` columns first (admins), `error` as `last_error`.
fn delivery_select(owner: &str, error: &str) -> String {
    format!(
        "SELECT {owner}d.id, e.event_id, e.event, w.url AS webhook_url, d.status, d.attempts, \
           d.last_status AS last_status_code, {error} AS last_error, \
           CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at, \
           d.last_attempt_at, d.created_at, d.finished_at \
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_pk \
         JOIN webhook_subscriptions w ON w.id = d.subscription_id"
    )
}

/// Recent deliveries of the session's events, newest first (gateway addition).
#[utoipa::path(
    get,
    path = "/v1/sessions/{session}/webhooks/deliveries",
    tag = "Webhooks",
    operation_id = "listWebhookDeliveries",
    params(
        ("session" = String, Path, description = "Session name", example = "default"),
        ("status" = Option<String>, Query, description = "`pending`, `delivered` or `failed`"),
        ("limit" = Option<i64>, Query, description = "At most this many (1 to 200, default 50)"),
    ),
    responses(
        (status = 200, description = "Recent deliveries, newest first", body = [DeliveryView]),
        (status = 400, description = "A bad status or limit", body = crate::http::error::ErrorBody),
        (status = 403, description = "The key lacks `webhooks:read`", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such session", body = crate::http::error::ErrorBody),
    )
)]
pub async fn deliveries(
    session: web::Path<String>,
    query: web::Query<DeliveriesQuery>,
    caller: TenantCaller,
    proxy: web::Data<ProxyState>,
) -> HttpResponse {
    let result = async {
        caller.require(Scope::WebhooksRead)?;
        let (name, _) = owned(&proxy, &caller, &session).await?;
        if let Some(s) = &query.status {
            if !matches!(s.as_str(), "pending" | "delivered" | "failed") {
                return Err(ApiError::bad_request(
                    "status must be pending, delivered or failed",
                ));
            }
        }
        let limit = query.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::bad_request("limit must be between 1 and 200"));
        }
        let rows: Vec<DeliveryView> = sqlx::query_as(&format!(
            "{} WHERE d.tenant_id = $1 AND d.session_name = $2 \
             AND ($3::text IS NULL OR d.status = $3) ORDER BY d.created_at DESC, d.id LIMIT $4",
            delivery_select("", TENANT_ERROR)
        ))
        .bind(caller.tenant.id)
        .bind(name.as_str())
        .bind(&query.status)
        .bind(limit)
        .fetch_all(&proxy.pool)
        .await?;
        Ok(HttpResponse::Ok().json(rows))
    }
    .await;
    answer(result, &proxy, &caller)
}

/// Sends a delivered or failed delivery again, from a fresh set of attempts (gateway addition).
#[utoipa::path(
    post,
    path = "/v1/sessions/{session}/webhooks/deliveries/{id}/redeliver",
    tag = "Webhooks",
    operation_id = "redeliverWebhook",
    params(
        ("session" = String, Path, description = "Session name", example = "default"),
        ("id" = String, Path, description = "The delivery's id"),
    ),
    responses(
        (status = 202, description = "Queued for delivery again", body = DeliveryView),
        (status = 403, description = "The key lacks `webhooks:write`", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such session or delivery", body = crate::http::error::ErrorBody),
        (status = 409, description = "The delivery is still pending", body = crate::http::error::ErrorBody),
    )
)]
pub async fn redeliver(
    path: web::Path<(String, String)>,
    caller: TenantCaller,
    proxy: web::Data<ProxyState>,
) -> HttpResponse {
    let result = async {
        caller.require(Scope::WebhooksWrite)?;
        let (session, id) = path.into_inner();
        let (name, _) = owned(&proxy, &caller, &session).await?;
        let not_found = || ApiError::not_found(format!("delivery {id} not found"));
        let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
        let mut tx = proxy.pool.begin().await?;
        let reset = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), \
                    finished_at = NULL \
             WHERE id = $1 AND tenant_id = $2 AND session_name = $3 AND status <> 'pending'",
        )
        .bind(id)
        .bind(caller.tenant.id)
        .bind(name.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if reset == 0 {
            let pending: Option<bool> = sqlx::query_scalar(
                "SELECT true FROM webhook_deliveries WHERE id = $1 AND tenant_id = $2 AND session_name = $3",
            )
            .bind(id)
            .bind(caller.tenant.id)
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            return Err(match pending {
                Some(_) => ApiError::conflict("the delivery is still pending; it will be attempted on its own"),
                None => not_found(),
            });
        }
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(NOTIFY_CHANNEL)
            .execute(&mut *tx)
            .await?;
        let view: DeliveryView = sqlx::query_as(&format!("{} WHERE d.id = $1", delivery_select("", TENANT_ERROR)))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(HttpResponse::Accepted().json(view))
    }
    .await;
    answer(result, &proxy, &caller)
}

#[derive(Debug, Deserialize)]
pub struct AdminDeliveriesQuery {
    tenant: Option<Uuid>,
    status: Option<String>,
    limit: Option<i64>,
}

/// A delivery with its owner, for admins.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminDeliveryView {
    pub tenant_id: Uuid,
    pub session_name: String,
    #[serde(flatten)]
    #[sqlx(flatten)]
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
        (status = 400, description = "A bad status or limit", body = crate::http::error::ErrorBody),
    )
)]
pub async fn admin_deliveries(
    _admin: AdminCaller,
    query: web::Query<AdminDeliveriesQuery>,
    proxy: web::Data<ProxyState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(s) = &query.status {
        if !matches!(s.as_str(), "pending" | "delivered" | "failed") {
            return Err(ApiError::bad_request(
                "status must be pending, delivered or failed",
            ));
        }
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 200"));
    }
    let select = delivery_select("d.tenant_id, d.session_name, ", RAW_ERROR);
    let rows: Vec<AdminDeliveryView> = sqlx::query_as(&format!(
        "{select} WHERE ($1::uuid IS NULL OR d.tenant_id = $1) \
         AND ($2::text IS NULL OR d.status = $2) ORDER BY d.created_at DESC, d.id LIMIT $3"
    ))
    .bind(query.tenant)
    .bind(&query.status)
    .bind(limit)
    .fetch_all(&proxy.pool)
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// The tenant routes (under `/v1/sessions/{session}/webhooks`, registered before the forwarded
/// rows) and the upstream's ingress (no tenant credentials: the token and the HMAC are its
/// authentication).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/sessions/{session}/webhooks")
            .route(web::get().to(list))
            .route(web::post().to(add))
            .route(web::delete().to(remove)),
    )
    .service(
        web::resource("/v1/sessions/{session}/webhooks/deliveries")
            .route(web::get().to(deliveries)),
    )
    .service(
        web::resource("/v1/sessions/{session}/webhooks/deliveries/{id}/redeliver")
            .route(web::post().to(redeliver)),
    )
    .service(web::resource("/admin/v1/webhooks/deliveries").route(web::get().to(admin_deliveries)))
    .service(
        web::resource(format!(
            "{}{{token}}",
            crate::services::webhooks::INGRESS_PREFIX
        ))
        .route(web::post().to(crate::http::ingress::receive)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;
    use actix_web::test::TestRequest;

    async fn parse(body: Value, allow_private: bool) -> Result<NewWebhook, ApiError> {
        let req = TestRequest::post()
            .insert_header(("content-type", "application/json"))
            .to_http_request();
        parse_new(&req, body.to_string().as_bytes(), allow_private).await
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
        assert!(new.hmac_key.is_none() && new.custom_headers.is_empty());
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
            ALGORITHM_HEADER, HMAC_HEADER, REQUEST_ID_HEADER, TIMESTAMP_HEADER,
        };
        for h in [
            HMAC_HEADER,
            ALGORITHM_HEADER,
            REQUEST_ID_HEADER,
            TIMESTAMP_HEADER,
        ] {
            assert!(h.starts_with(SIGNATURE_PREFIX), "{h}");
        }
    }

    #[test]
    fn views_hide_header_values() {
        let view = WebhookView::from(SubscriptionRow {
            id: Uuid::nil(),
            url: "https://8.8.8.8/".to_owned(),
            events: vec!["message".to_owned()],
            signed: true,
            retry_policy: "linear".to_owned(),
            retry_delay_seconds: 3,
            retry_attempts: 4,
            custom_headers: sqlx::types::Json(vec![CustomHeader {
                name: "Authorization".into(),
                value: "Bearer secret".into(),
            }]),
            created_at: Utc::now(),
        });
        let json = serde_json::to_string(&view).unwrap();
        assert!(!json.contains("secret"), "{json}");
        assert!(json.contains(r#""signed":true"#));
    }
}
