//! A tenant call, phase by phase: scope, session ownership, local validation, idempotency,
//! forwarding, and the answer renamed back. Authentication happened in the `TenantCaller`
//! extractor, so nothing here runs for an unauthenticated request.

use crate::db::Db;
use crate::domain::{SessionName, UpstreamSession};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::TenantCaller;
use crate::http::quota_headers::QuotaHeaders;
use crate::http::routes::endpoints::{Endpoint, Handling, SessionIn};
use crate::http::routes::path_params;
use crate::http::routes::schema::{self, Ty};
use crate::http::tenant::rewrite::{query_param, rename_in_text, rename_session_fields};
use crate::http::tenant::session_config;
use crate::http::tenant::webhooks::{self, NewWebhook, SessionTarget};
use crate::services::idempotency::{self, Claim};
use crate::services::quota::{Admission, Quotas};
use crate::services::sessions::SessionStore;
use crate::services::upstream::{
    UpstreamAnswer, UpstreamCall, UpstreamClient, FORWARDED_ANSWER_HEADERS,
};
use crate::services::webhooks::Relay;
use crate::telemetry::RequestId;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use bytes::Bytes;
use moka::future::Cache;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const DEFAULT_SESSION: &str = "default";

/// State shared by every worker's proxy.
pub struct ProxyState {
    pub pool: Db,
    pub sessions: SessionStore,
    pub quotas: Arc<Quotas>,
    /// `contacts/check-exists` answers per tenant, session and phone number.
    check_exists: CheckExistsCache,
    /// How long a concurrent twin of an idempotent request waits for the first one's answer.
    idempotency_wait: Duration,
}

impl ProxyState {
    pub fn new(
        pool: Db,
        sessions: SessionStore,
        quotas: Arc<Quotas>,
        check_exists_ttl: Duration,
        request_timeout: Duration,
    ) -> Self {
        Self {
            pool,
            sessions,
            quotas,
            check_exists: CheckExistsCache::new(check_exists_ttl),
            idempotency_wait: request_timeout + Duration::from_secs(1),
        }
    }
}

/// `contacts/check-exists` answers, bounded per tenant: each tenant has its own cache, so one
/// tenant's lookups can evict only its own entries (and a bounded number of tenants is kept).
struct CheckExistsCache {
    ttl: Duration,
    tenants: Cache<Uuid, Cache<(String, String), Bytes>>,
}

impl CheckExistsCache {
    const TENANTS: u64 = 10_000;
    const PER_TENANT: u64 = 10_000;

    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            tenants: Cache::builder()
                .max_capacity(Self::TENANTS)
                .time_to_idle(ttl)
                .build(),
        }
    }

    async fn get(&self, (tenant, session, phone): (Uuid, String, String)) -> Option<Bytes> {
        self.tenants
            .get(&tenant)
            .await?
            .get(&(session, phone))
            .await
    }

    async fn insert(&self, (tenant, session, phone): (Uuid, String, String), answer: Bytes) {
        let ttl = self.ttl;
        let cache = self
            .tenants
            .get_with(tenant, async move {
                Cache::builder()
                    .max_capacity(Self::PER_TENANT)
                    .time_to_live(ttl)
                    .build()
            })
            .await;
        cache.insert((session, phone), answer).await;
    }
}

/// The request, as the phases see it.
struct Inbound<'a> {
    endpoint: &'static Endpoint,
    req: &'a HttpRequest,
    caller: &'a TenantCaller,
    /// The parsed body, when the endpoint takes one.
    json: Option<Value>,
    raw_body: Bytes,
    /// `config.webhooks` of a create or start body, checked and taken out of `json`: relayed
    /// subscriptions once the upstream has the session.
    config_webhooks: Vec<NewWebhook>,
}

/// Serves one row of the table. Every answer after authentication, success or refusal,
/// carries the tenant's quota headers.
pub async fn handle(
    endpoint: &'static Endpoint,
    req: HttpRequest,
    payload: web::Payload,
    caller: TenantCaller,
    state: web::Data<ProxyState>,
    client: web::Data<UpstreamClient>,
) -> HttpResponse {
    let mut rate_remaining = None;
    let mut response = serve(
        endpoint,
        &req,
        payload,
        &caller,
        &state,
        &client,
        &mut rate_remaining,
    )
    .await
    .unwrap_or_else(|e| actix_web::ResponseError::error_response(&e));
    state
        .quotas
        .stamp(&mut response, &caller.tenant, rate_remaining);
    response
}

async fn serve(
    endpoint: &'static Endpoint,
    req: &HttpRequest,
    payload: web::Payload,
    caller: &TenantCaller,
    state: &ProxyState,
    client: &UpstreamClient,
    rate_remaining: &mut Option<u32>,
) -> Result<HttpResponse, ApiError> {
    caller.require(endpoint.scope)?;
    // Read only now: the caller is authenticated and may call this row.
    let body = crate::http::body::read(req, payload, body_limit(endpoint, req)).await?;
    let json = parse_body(endpoint, req, &body)?;
    let mut inbound = Inbound {
        endpoint,
        req,
        caller,
        json,
        raw_body: body,
        config_webhooks: Vec::new(),
    };
    let tenant = caller.tenant.id;

    // Ownership before validation: a session the tenant does not own is 404, whatever the body.
    let session_name = tenant_session_name(&inbound)?;
    let upstream_session = match (&session_name, endpoint.handling) {
        (Some(name), Handling::CreateSession) => {
            let name = SessionName::parse_new(name)?;
            if !caller.may_use_session(name.as_str()) {
                return Err(ApiError::forbidden(format!(
                    "this key may not use a session named `{name}`"
                )));
            }
            Some((name, None))
        }
        (Some(name), _) => {
            let upstream = owned_session(&state.sessions, caller, name).await?;
            Some((SessionName::parse(name)?, Some(upstream)))
        }
        (None, _) => None,
    };

    validate(&inbound)?;
    if let (Some(json), true) = (inbound.json.as_mut(), takes_config(endpoint)) {
        inbound.config_webhooks =
            session_config::take_webhooks(json, relay(req)?.allow_private).await?;
    }
    let call_path = path_params::upstream_path(
        endpoint.path,
        req.uri().path(),
        upstream_session
            .as_ref()
            .and_then(|(_, u)| u.as_ref())
            .map(UpstreamSession::as_str),
    )?;

    if endpoint.handling == Handling::CheckExists {
        if let Some(cached) = state
            .check_exists
            .get(check_exists_key(
                &inbound,
                upstream_session.as_ref().and_then(|(_, u)| u.as_ref()),
            ))
            .await
        {
            return Ok(HttpResponse::Ok()
                .content_type(mime::APPLICATION_JSON)
                .body(cached));
        }
    }

    let idempotency_key = match (endpoint.idempotent, req.headers().get(idempotency::HEADER)) {
        (true, Some(raw)) => Some(idempotency::parse_key(raw)?),
        _ => None,
    };
    let mut claim_guard = None;
    if let Some(key) = &idempotency_key {
        let fingerprint = idempotency::fingerprint(endpoint.operation_id, &inbound.raw_body);
        if let Claim::Replay(stored) = idempotency::claim(
            &state.pool,
            tenant,
            key,
            &fingerprint,
            state.idempotency_wait,
        )
        .await?
        {
            return Ok(replay(stored));
        }
        claim_guard = Some(idempotency::ClaimGuard::new(
            state.pool.clone(),
            tenant,
            key.clone(),
        ));
    }

    // A replayed answer spends no quota: admission comes after the idempotency check.
    let admission = match state
        .quotas
        .admit(&caller.tenant, endpoint.operation_id)
        .await
    {
        Ok(admission) => admission,
        Err(refusal) => {
            if let Some(key) = &idempotency_key {
                idempotency::release(&state.pool, tenant, key).await;
            }
            return Err(refusal.into());
        }
    };
    *rate_remaining = admission.rate_remaining;

    let result = forward(&inbound, state, client, upstream_session, call_path).await;
    settle(&state.quotas, admission, &result).await;
    // Settled from here on: what follows records the outcome or frees the key itself.
    if let Some(guard) = claim_guard {
        guard.settled();
    }
    if let Some(key) = &idempotency_key {
        match &result {
            Ok(Forwarded {
                status,
                content_type,
                body: Some(body),
                sent: true,
                ..
            }) => {
                idempotency::complete(
                    &state.pool,
                    tenant,
                    key,
                    status.as_u16(),
                    content_type.as_deref(),
                    body,
                )
                .await?;
            }
            // Refused before anything reached the upstream: the key may be used again.
            _ => idempotency::release(&state.pool, tenant, key).await,
        }
    }
    result.map(|f| f.response)
}

/// A forwarded call counts; one that never reached the upstream gives its quota back.
async fn settle(quotas: &Quotas, admission: Admission, result: &Result<Forwarded, ApiError>) {
    match result {
        Ok(f) if f.sent => quotas.commit(admission),
        _ => quotas.cancel(admission).await,
    }
}

/// What forwarding produced, with what idempotency needs to record it.
struct Forwarded {
    response: HttpResponse,
    status: StatusCode,
    content_type: Option<String>,
    /// The buffered body (JSON answers); `None` when it was streamed.
    body: Option<Bytes>,
    /// Whether the upstream received the request.
    sent: bool,
}

async fn forward(
    inbound: &Inbound<'_>,
    state: &ProxyState,
    client: &UpstreamClient,
    session: Option<(SessionName, Option<UpstreamSession>)>,
    call_path: String,
) -> Result<Forwarded, ApiError> {
    let endpoint = inbound.endpoint;
    let tenant = inbound.caller.tenant.id;

    // A new session is recorded first, so the tenant's max_sessions is enforced atomically.
    let session = match session {
        Some((name, None)) => {
            let upstream = state
                .sessions
                .create(tenant, &name, state.quotas.upstream_max_sessions)
                .await?;
            Some((name, upstream))
        }
        Some((name, Some(upstream))) => Some((name, upstream)),
        None => None,
    };

    let call_body = rewrite_body(inbound, session.as_ref().map(|(_, u)| u))?;
    let path_and_query = with_declared_query(inbound, call_path, session.as_ref().map(|(_, u)| u));
    let request_id = inbound
        .req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone());
    // A body the gateway serialised goes as JSON whatever the tenant declared (an empty
    // `POST /v1/sessions` declares nothing, and the upstream would ignore an untyped body).
    let mut headers = inbound.req.headers().clone();
    if inbound.json.is_some() && call_body.is_some() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let call = UpstreamCall {
        method: endpoint.method.clone(),
        path_and_query,
        body: call_body,
        headers: &headers,
        request_id: request_id.as_deref(),
        route: endpoint.path,
        retryable: endpoint.retryable(),
    };
    let sent = client.send(&call).await;

    // Keep the sessions table in step with what the upstream now has.
    match (&session, endpoint.handling) {
        (Some((name, _)), Handling::CreateSession) if !matches!(&sent, Ok(a) if a.status().is_success()) =>
        {
            state.sessions.forget(tenant, name).await?;
        }
        (Some((name, _)), Handling::DeleteSession) if matches!(&sent, Ok(a) if a.status().is_success() || a.status() == StatusCode::NOT_FOUND) =>
        {
            state.sessions.forget(tenant, name).await?;
        }
        // ENGINE.md §2 row 6: stopping with `logout: true` deletes the session upstream.
        (Some((name, _)), Handling::StopSession)
            if logs_out(inbound) && matches!(&sent, Ok(a) if a.status().is_success()) =>
        {
            state.sessions.forget(tenant, name).await?;
        }
        _ => {}
    }
    if let (Some((name, upstream)), Ok(answer)) = (&session, &sent) {
        if answer.status().is_success() && !inbound.config_webhooks.is_empty() {
            if let Err(error) =
                subscribe_config_webhooks(inbound, state, client, name, upstream).await
            {
                return Ok(recorded(error));
            }
        }
    }

    let mut answer = match sent {
        Ok(answer) => {
            state
                .quotas
                .observe_upstream(answer.status().as_u16(), answer.headers());
            answer
        }
        Err(failure) => {
            let sent = !failure.never_sent();
            let error = ApiError::from(failure);
            if sent {
                // The outcome is unknown: record it, so a retry with the same key does not resend.
                return Ok(recorded(error));
            }
            return Err(error);
        }
    };

    let status = answer.status();
    if !answer.is_json() {
        if status.is_success() {
            return Ok(stream_through(answer));
        }
        let body = error_answer(status, None, marketplace_error(&answer));
        return Ok(buffered(status, body, &answer, true));
    }

    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Ok(credentials_refused(status, &answer));
    }
    // From here on the upstream has acted on the call: every failure is an outcome to record,
    // never an error that would let a retry send it again.
    let value = match read_answer(&mut answer).await {
        Ok(value) => value,
        Err(error) => return Ok(sent_but_broken(error)),
    };
    let value = match rename_answer(inbound, state, &session, value).await {
        Ok(value) => value,
        Err(error) => return Ok(sent_but_broken(error)),
    };
    if !status.is_success() {
        let body = error_answer(status, Some(&value), marketplace_error(&answer));
        return Ok(buffered(status, body, &answer, true));
    }
    let body = match serde_json::to_vec(&value) {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) => return Ok(sent_but_broken(ApiError::internal(e))),
    };
    if endpoint.handling == Handling::CheckExists {
        let key = check_exists_key(inbound, session.as_ref().map(|(_, u)| u));
        state.check_exists.insert(key, body.clone()).await;
    }
    Ok(buffered(status, body, &answer, true))
}

/// An error that is the outcome of a call the upstream received: recorded like any answer.
fn recorded(error: ApiError) -> Forwarded {
    let body = Bytes::from(serde_json::to_vec(&error.body()).unwrap_or_default());
    Forwarded {
        response: actix_web::ResponseError::error_response(&error),
        status: error.status(),
        content_type: Some(mime::APPLICATION_JSON.to_string()),
        body: Some(body),
        sent: true,
    }
}

/// Whether the row's body carries a session `config` (create and start).
fn takes_config(endpoint: &Endpoint) -> bool {
    endpoint
        .body
        .is_some_and(|fields| fields.iter().any(|f| f.name == "config"))
}

/// Whether a stop body asks the engine to log out (and so delete) the session.
fn logs_out(inbound: &Inbound<'_>) -> bool {
    inbound
        .json
        .as_ref()
        .and_then(|b| b.get("logout"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn relay(req: &HttpRequest) -> Result<&Relay, ApiError> {
    req.app_data::<web::Data<Relay>>()
        .map(|r| r.get_ref())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the webhook relay is not configured")))
}

/// The tenant's `config.webhooks`, subscribed exactly as `POST /v1/sessions/{session}/webhooks`
/// would, now that the upstream has the session. A failure is reported with the session
/// created: its webhooks can be added again through the relay's own route.
async fn subscribe_config_webhooks(
    inbound: &Inbound<'_>,
    state: &ProxyState,
    client: &UpstreamClient,
    name: &SessionName,
    upstream: &UpstreamSession,
) -> Result<(), ApiError> {
    let target = SessionTarget {
        caller: inbound.caller,
        name,
        upstream,
    };
    let relay = relay(inbound.req)?;
    webhooks::subscribe(state, client, relay, &target, &inbound.config_webhooks)
        .await
        .map(drop)
        .map_err(|e| {
            ApiError::new(
                e.status(),
                format!("the session was created upstream, but config.webhooks could not be subscribed: {}", e.message()),
            )
        })
}

fn rename_message(message: &mut Value, from: &str, to: &str) {
    match message {
        Value::String(s) => *s = rename_in_text(s, from, to),
        Value::Array(parts) => parts.iter_mut().for_each(|p| rename_message(p, from, to)),
        _ => {}
    }
}

/// Cached check-exists answers are per tenant, upstream session and phone number.
fn check_exists_key(
    inbound: &Inbound<'_>,
    session: Option<&UpstreamSession>,
) -> (Uuid, String, String) {
    let upstream = session.map(|u| u.as_str().to_owned()).unwrap_or_default();
    let phone = query_param(inbound.req.query_string(), "phone").unwrap_or_default();
    (inbound.caller.tenant.id, upstream, phone)
}

fn parse_body(
    endpoint: &Endpoint,
    req: &HttpRequest,
    body: &Bytes,
) -> Result<Option<Value>, ApiError> {
    if endpoint.body.is_none() {
        return Ok(None);
    }
    // An empty body is an empty object: validation then names the first required field.
    Ok(Some(
        crate::http::body::json(req, body)?.unwrap_or_else(|| Value::Object(Default::default())),
    ))
}

/// The tenant's name for the session the call names, if it names one.
fn tenant_session_name(inbound: &Inbound<'_>) -> Result<Option<String>, ApiError> {
    Ok(match inbound.endpoint.session {
        SessionIn::Absent => None,
        SessionIn::Path => inbound.req.match_info().get("session").map(str::to_owned),
        SessionIn::Query(param) => Some(
            query_param(inbound.req.query_string(), param)
                .unwrap_or_else(|| DEFAULT_SESSION.to_owned()),
        ),
        SessionIn::Body(field) => match inbound.json.as_ref().and_then(|b| b.get(field)) {
            None | Some(Value::Null) => Some(DEFAULT_SESSION.to_owned()),
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ApiError::bad_request(format!("{field} must be a string"))),
        },
    })
}

/// The upstream session behind a name the tenant gave; 404 (exactly as for a missing one)
/// when the tenant does not own it or its key may not use it.
async fn owned_session(
    store: &SessionStore,
    caller: &TenantCaller,
    name: &str,
) -> Result<UpstreamSession, ApiError> {
    let not_found = || ApiError::not_found(format!("session \"{name}\" not found"));
    let Ok(parsed) = SessionName::parse(name) else {
        return Err(not_found());
    };
    if !caller.may_use_session(name) {
        return Err(not_found());
    }
    store
        .resolve(caller.tenant.id, &parsed)
        .await?
        .ok_or_else(not_found)
}

fn validate(inbound: &Inbound<'_>) -> Result<(), ApiError> {
    let endpoint = inbound.endpoint;
    if let (Some(fields), Some(body)) = (endpoint.body, &inbound.json) {
        schema::validate(body, fields).map_err(|e| ApiError::bad_request(e.0))?;
        if takes_config(endpoint) {
            session_config::check_tenant_config(body)?;
        }
        check_body_session(inbound, body)?;
    }
    let query = inbound.req.query_string();
    for param in endpoint.query {
        match query_param(query, param.name) {
            None if param.required => {
                return Err(ApiError::bad_request(format!("{} is required", param.name)))
            }
            None => {}
            Some(value) => {
                schema::validate(
                    &serde_json::json!({ param.name: value }),
                    &[schema::Field::required(param.name, param.ty, "", "")],
                )
                .map_err(|e| ApiError::bad_request(e.0))?;
            }
        }
    }
    Ok(())
}

/// Keeps the entries of the upstream's session list that the tenant owns, renamed.
fn own_sessions_only(value: Value, owned: &[&crate::services::sessions::OwnedSession]) -> Value {
    let names: HashMap<&str, &str> = owned
        .iter()
        .map(|s| (s.upstream_name.as_str(), s.name.as_str()))
        .collect();
    let Value::Array(items) = value else {
        return Value::Array(Vec::new());
    };
    let mine = items
        .into_iter()
        .filter_map(|mut item| {
            let upstream = item.get("name")?.as_str()?.to_owned();
            let tenant_name = names.get(upstream.as_str())?;
            rename_session_fields(&mut item, &upstream, tenant_name);
            Some(item)
        })
        .collect();
    Value::Array(mine)
}

/// On a row whose path names the session, a `session` body field may only repeat it (it is
/// then removed before forwarding).
fn check_body_session(inbound: &Inbound<'_>, body: &Value) -> Result<(), ApiError> {
    if inbound.endpoint.session != SessionIn::Path {
        return Ok(());
    }
    let named = inbound.req.match_info().get("session");
    match body.get("session") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if Some(s.as_str()) == named => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "session in the body must name the session of the path",
        )),
    }
}

/// The body to send: the tenant's, with the session named by its upstream name. Rows that
/// declare no body send none, whatever the tenant attached.
fn rewrite_body(
    inbound: &Inbound<'_>,
    upstream: Option<&UpstreamSession>,
) -> Result<Option<Bytes>, ApiError> {
    let Some(json) = &inbound.json else {
        return Ok(None);
    };
    let mut json = json.clone();
    match (inbound.endpoint.session, upstream) {
        (SessionIn::Body(field), Some(upstream)) => {
            json[field] = Value::String(upstream.as_str().to_owned());
        }
        // The path names the session; a `session` field too would be a second opinion.
        (SessionIn::Path | SessionIn::Query(_), _) => {
            if let Value::Object(map) = &mut json {
                map.remove("session");
            }
        }
        _ => {}
    }
    Ok(Some(Bytes::from(
        serde_json::to_vec(&json).map_err(ApiError::internal)?,
    )))
}

/// The largest body a row takes: media rows `WAGW_MAX_BODY_BYTES`, the others 256 KiB (or
/// `WAGW_MAX_BODY_BYTES` when an operator set it lower: it stays the ceiling of every row).
fn body_limit(endpoint: &Endpoint, req: &HttpRequest) -> usize {
    let max = req
        .app_data::<web::Data<crate::config::Config>>()
        .map(|c| c.max_body_bytes)
        .unwrap_or(crate::http::body::limits::PLAIN);
    if has_media(endpoint.body.unwrap_or(&[])) {
        max
    } else {
        max.min(crate::http::body::limits::PLAIN)
    }
}

/// Whether a row's body carries a file, anywhere in its fields (from the route table).
fn has_media(fields: &[schema::Field]) -> bool {
    fields.iter().any(|f| match &f.ty {
        Ty::File => true,
        Ty::Object(inner) => has_media(inner),
        Ty::Objects { fields, .. } => has_media(fields),
        _ => false,
    })
}

/// `path` with only the row's declared query parameters, the session one renamed.
fn with_declared_query(
    inbound: &Inbound<'_>,
    path: String,
    upstream: Option<&UpstreamSession>,
) -> String {
    let endpoint = inbound.endpoint;
    let session_param = match endpoint.session {
        SessionIn::Query(param) => Some(param),
        _ => None,
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in url::form_urlencoded::parse(inbound.req.query_string().as_bytes()) {
        if Some(k.as_ref()) == session_param {
            continue;
        }
        if endpoint.query.iter().any(|p| p.name == k) {
            query.append_pair(&k, &v);
            any = true;
        }
    }
    if let (Some(param), Some(u)) = (session_param, upstream) {
        query.append_pair(param, u.as_str());
        any = true;
    }
    if any {
        format!("{path}?{}", query.finish())
    } else {
        path
    }
}

/// Reads and parses a JSON answer.
async fn read_answer(answer: &mut UpstreamAnswer) -> Result<Value, ApiError> {
    let raw = answer.read_body().await?;
    serde_json::from_slice(&raw).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "the upstream answered with malformed JSON",
        )
        .with_cause(e)
    })
}

/// The answer as the tenant sees it: its session fields renamed, the gateway's own upstream
/// registrations removed, a list kept to the tenant's sessions.
async fn rename_answer(
    inbound: &Inbound<'_>,
    state: &ProxyState,
    session: &Option<(SessionName, UpstreamSession)>,
    mut value: Value,
) -> Result<Value, ApiError> {
    match session {
        Some((name, upstream)) => {
            rename_session_fields(&mut value, upstream.as_str(), name.as_str());
            // Error messages quote the session inside their text: rename it there too.
            for field in ["message", "error", "detail"] {
                if let Some(text) = value.get_mut(field) {
                    rename_message(text, upstream.as_str(), name.as_str());
                }
            }
        }
        None if inbound.endpoint.handling == Handling::ListSessions => {
            // A key limited to some sessions sees only those.
            let owned = state.sessions.list(inbound.caller.tenant.id).await?;
            let visible: Vec<_> = owned
                .iter()
                .filter(|s| inbound.caller.may_use_session(&s.name))
                .collect();
            value = own_sessions_only(value, &visible);
        }
        None => {}
    }
    if inbound.endpoint.tag == crate::http::routes::endpoints::Tag::Sessions {
        // Only session answers carry `config`; one query covers a whole list.
        let one = session.as_ref().map(|(name, _)| name.as_str());
        let by_session = if value.get("config").is_some() || value.is_array() {
            webhooks::views_by_session(&state.pool, inbound.caller.tenant.id, one).await?
        } else {
            HashMap::new()
        };
        session_config::show_subscriptions(&mut value, &by_session);
    }
    Ok(value)
}

/// The upstream acted on the call but its answer could not be read or rewritten: 502, recorded
/// like any other outcome (quota spent, an idempotency key replays it).
fn sent_but_broken(error: ApiError) -> Forwarded {
    tracing::error!(error = %error, "the upstream's answer to a sent call could not be used");
    let status = StatusCode::BAD_GATEWAY;
    let error = ApiError::new(
        status,
        "the upstream received the call but its answer could not be read; do not resend blindly",
    );
    let body = Bytes::from(serde_json::to_vec(&error.body()).unwrap_or_default());
    Forwarded {
        response: HttpResponse::build(status)
            .content_type(mime::APPLICATION_JSON)
            .body(body.clone()),
        status,
        content_type: Some(mime::APPLICATION_JSON.to_string()),
        body: Some(body),
        sent: true,
    }
}

/// The upstream refused the organisation's credentials: the gateway's problem, not the
/// tenant's (its own key was fine). Counted and logged; the upstream's text is not shown.
fn credentials_refused(status: StatusCode, answer: &UpstreamAnswer) -> Forwarded {
    tracing::error!(
        upstream_status = status.as_u16(),
        "the upstream refused the gateway's credentials (WAGW_UPSTREAM_KEY / WAGW_UPSTREAM_HOST)"
    );
    let gateway = StatusCode::BAD_GATEWAY;
    let body = Bytes::from(
        serde_json::to_vec(&ErrorBody::new(
            gateway,
            "the upstream refused the gateway's credentials",
        ))
        .unwrap_or_default(),
    );
    buffered(gateway, body, answer, true)
}

/// RapidAPI marks its own answers (plan, key, quota) with `x-rapidapi-*` headers.
fn marketplace_error(answer: &UpstreamAnswer) -> bool {
    answer
        .headers()
        .keys()
        .any(|k| k.as_str().starts_with("x-rapidapi-"))
}

/// Upstream texts that describe the organisation's account rather than the call.
fn describes_the_account(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "quota",
        "plan",
        "subscribed",
        "api key",
        "rapidapi",
        "upgrade",
        "billing",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// An upstream error in the error shape. Its message is the upstream's `message`, or one built
/// from the engine's object errors (`{error, status, expected}`, `{detail}`); nothing else of
/// the upstream's internals (a 500's `exception`) and nothing about the organisation's plan.
fn error_answer(status: StatusCode, body: Option<&Value>, marketplace: bool) -> Bytes {
    let message = body
        .and_then(error_message)
        .filter(|m| !marketplace && !describes_the_account(m))
        .unwrap_or_else(|| neutral_message(status));
    Bytes::from(serde_json::to_vec(&ErrorBody::new(status, message)).unwrap_or_default())
}

fn error_message(body: &Value) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => None,
    };
    if let Some(message) = body.get("message").and_then(text) {
        return Some(message);
    }
    if let Some(nested) = body.get("message").filter(|m| m.is_object()) {
        return error_message(nested);
    }
    if let Some(detail) = body.get("detail").and_then(text) {
        return Some(detail);
    }
    let error = body.get("error").and_then(text)?;
    let mut facts = Vec::new();
    if let Some(session) = body.get("session").and_then(Value::as_str) {
        facts.push(format!("session \"{session}\""));
    }
    if let Some(status) = body.get("status").and_then(Value::as_str) {
        facts.push(format!("status {status}"));
    }
    if let Some(expected) = body.get("expected").and_then(text) {
        facts.push(format!("expected {expected}"));
    }
    Some(if facts.is_empty() {
        error
    } else {
        format!("{error} ({})", facts.join(", "))
    })
}

fn neutral_message(status: StatusCode) -> String {
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            "the upstream is limiting the gateway's calls; retry later".to_owned()
        }
        _ => status
            .canonical_reason()
            .unwrap_or("upstream error")
            .to_owned(),
    }
}

fn buffered(status: StatusCode, body: Bytes, answer: &UpstreamAnswer, json: bool) -> Forwarded {
    let mut response = HttpResponse::build(status);
    for name in FORWARDED_ANSWER_HEADERS {
        if let Some(value) = answer.headers().get(name) {
            response.insert_header((name.clone(), value.clone()));
        }
    }
    if json {
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after = answer
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(1)
            .max(1);
        response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
    }
    Forwarded {
        response: response.body(body.clone()),
        status,
        content_type: json.then(|| "application/json".to_owned()),
        body: Some(body),
        sent: true,
    }
}

/// Binary answers (the QR PNG) are streamed with their content type, never buffered.
fn stream_through(answer: UpstreamAnswer) -> Forwarded {
    let status = answer.status();
    let mut response = HttpResponse::build(status);
    for name in FORWARDED_ANSWER_HEADERS {
        if let Some(value) = answer.headers().get(name) {
            response.insert_header((name.clone(), value.clone()));
        }
    }
    Forwarded {
        response: response.streaming(answer.response),
        status,
        content_type: None,
        body: None,
        sent: true,
    }
}

fn replay(stored: idempotency::StoredAnswer) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status as u16).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    if let Some(ct) = stored.content_type {
        response.insert_header((header::CONTENT_TYPE, ct));
    }
    response.insert_header(("idempotent-replayed", "true"));
    response.body(stored.body)
}
