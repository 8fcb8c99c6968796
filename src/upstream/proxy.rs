//! A tenant call, phase by phase: scope, session ownership, local validation, idempotency,
//! forwarding, and the answer renamed back. Authentication happened in the `TenantCaller`
//! extractor, so nothing here runs for an unauthenticated request.

use super::client::{UpstreamAnswer, UpstreamCall, UpstreamClient, FORWARDED_ANSWER_HEADERS};
use super::endpoints::{Endpoint, Handling, SessionIn};
use super::rewrite::{
    query_param, rename_in_text, rename_strings, replace_path_segment, set_query_param,
};
use super::schema;
use crate::auth::TenantCaller;
use crate::db::Db;
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::{self, Claim};
use crate::quota::{Admission, Quotas};
use crate::sessions::{SessionName, SessionStore, UpstreamSession};
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
    check_exists: Cache<(Uuid, String, String), Bytes>,
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
            check_exists: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(check_exists_ttl)
                .build(),
            idempotency_wait: request_timeout + Duration::from_secs(1),
        }
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
}

/// Serves one row of the table. Every answer after authentication, success or refusal,
/// carries the tenant's quota headers.
pub async fn handle(
    endpoint: &'static Endpoint,
    req: HttpRequest,
    body: web::Bytes,
    caller: TenantCaller,
    state: web::Data<ProxyState>,
    client: web::Data<UpstreamClient>,
) -> HttpResponse {
    let mut rate_remaining = None;
    let mut response = serve(
        endpoint,
        &req,
        body,
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
    body: web::Bytes,
    caller: &TenantCaller,
    state: &ProxyState,
    client: &UpstreamClient,
    rate_remaining: &mut Option<u32>,
) -> Result<HttpResponse, ApiError> {
    caller.require(endpoint.scope)?;
    let json = parse_body(endpoint, req, &body)?;
    let inbound = Inbound {
        endpoint,
        req,
        caller,
        json,
        raw_body: body,
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

    if endpoint.handling == Handling::CheckExists {
        if let Some(cached) = state
            .check_exists
            .get(&check_exists_key(
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
            return Err(refusal);
        }
    };
    *rate_remaining = admission.rate_remaining;

    let result = forward(&inbound, state, client, upstream_session).await;
    settle(&state.quotas, admission, &result).await;
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
    let path_and_query = upstream_path(inbound, session.as_ref().map(|(_, u)| u));
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
        _ => {}
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
                let body = Bytes::from(serde_json::to_vec(&error.body()).unwrap_or_default());
                let status = error.status();
                return Ok(Forwarded {
                    response: actix_web::ResponseError::error_response(&error),
                    status,
                    content_type: Some(mime::APPLICATION_JSON.to_string()),
                    body: Some(body),
                    sent: true,
                });
            }
            return Err(error);
        }
    };

    let status = answer.status();
    if !answer.is_json() {
        if status.is_success() {
            return Ok(stream_through(answer));
        }
        let body = error_answer(status, None);
        return Ok(buffered(status, body, &answer, true));
    }

    let raw = answer.read_body().await?;
    let mut value: Value = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "the upstream answered with malformed JSON",
        )
        .with_cause(e)
    })?;
    match &session {
        Some((name, upstream)) => rename_strings(&mut value, upstream.as_str(), name.as_str()),
        None if endpoint.handling == Handling::ListSessions => {
            // A key limited to some sessions sees only those.
            let owned = state.sessions.list(tenant).await?;
            let visible: Vec<_> = owned
                .iter()
                .filter(|s| inbound.caller.may_use_session(&s.name))
                .collect();
            value = own_sessions_only(value, &visible);
        }
        None => {}
    }
    if !status.is_success() {
        if let Some((name, upstream)) = &session {
            // Error messages quote the session inside their text: rename it there too.
            if let Some(message) = value.get_mut("message") {
                rename_message(message, upstream.as_str(), name.as_str());
            }
        }
        let body = error_answer(status, Some(&value));
        return Ok(buffered(status, body, &answer, true));
    }
    let body = Bytes::from(serde_json::to_vec(&value).map_err(ApiError::internal)?);
    if endpoint.handling == Handling::CheckExists {
        let key = check_exists_key(inbound, session.as_ref().map(|(_, u)| u));
        state.check_exists.insert(key, body.clone()).await;
    }
    Ok(buffered(status, body, &answer, true))
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
        crate::body::json(req, body)?.unwrap_or_else(|| Value::Object(Default::default())),
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

/// The body to send: the tenant's, with the session named by its upstream name.
fn rewrite_body(
    inbound: &Inbound<'_>,
    upstream: Option<&UpstreamSession>,
) -> Result<Option<Bytes>, ApiError> {
    match (&inbound.json, inbound.endpoint.session, upstream) {
        (Some(json), SessionIn::Body(field), Some(upstream)) => {
            let mut json = json.clone();
            json[field] = Value::String(upstream.as_str().to_owned());
            Ok(Some(Bytes::from(
                serde_json::to_vec(&json).map_err(ApiError::internal)?,
            )))
        }
        (Some(json), _, _) => Ok(Some(Bytes::from(
            serde_json::to_vec(json).map_err(ApiError::internal)?,
        ))),
        (None, _, _) if inbound.raw_body.is_empty() => Ok(None),
        (None, _, _) => Ok(Some(inbound.raw_body.clone())),
    }
}

/// The path and query to call: the same as the tenant's, with the session renamed.
fn upstream_path(inbound: &Inbound<'_>, upstream: Option<&UpstreamSession>) -> String {
    let req = inbound.req;
    let (path, query) = match (inbound.endpoint.session, upstream) {
        (SessionIn::Path, Some(u)) => (
            replace_path_segment(inbound.endpoint.path, req.path(), "session", u.as_str()),
            req.query_string().to_owned(),
        ),
        (SessionIn::Query(param), Some(u)) => (
            req.path().to_owned(),
            set_query_param(req.query_string(), param, u.as_str()),
        ),
        _ => (req.path().to_owned(), req.query_string().to_owned()),
    };
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// Keeps the entries of the upstream's session list that the tenant owns, renamed.
fn own_sessions_only(value: Value, owned: &[&crate::sessions::OwnedSession]) -> Value {
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
            rename_strings(&mut item, &upstream, tenant_name);
            Some(item)
        })
        .collect();
    Value::Array(mine)
}

/// An upstream error in the error shape, carrying only its message: nothing else of the
/// upstream's internals reaches the tenant.
fn error_answer(status: StatusCode, body: Option<&Value>) -> Bytes {
    let message = body
        .and_then(|b| b.get("message"))
        .and_then(|m| match m {
            Value::String(s) => Some(s.clone()),
            Value::Array(parts) => Some(
                parts
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        })
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("upstream error")
                .to_owned()
        });
    Bytes::from(serde_json::to_vec(&ErrorBody::new(status, message)).unwrap_or_default())
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
