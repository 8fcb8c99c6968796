//! The tenant's request read against its row: the body parsed and checked, the session it
//! names found, and the call to the upstream built in upstream names.

use super::ProxyCtx;
use crate::config::Config;
use crate::domain::UpstreamSession;
use crate::http::error::ApiError;
use crate::http::routes::endpoints::{Endpoint, SessionIn};
use crate::http::routes::schema::{self, FieldType};
use crate::http::tenant::rewrite::query_param;
use crate::http::tenant::session_config;
use crate::services::upstream::UpstreamCall;
use crate::telemetry::RequestId;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest};
use bytes::Bytes;
use serde_json::Value;

const DEFAULT_SESSION: &str = "default";

/// The largest body a row takes: media rows `WAGW_MAX_BODY_BYTES`, the others 256 KiB (or
/// `WAGW_MAX_BODY_BYTES` when an operator set it lower: it stays the ceiling of every row).
pub fn body_limit(endpoint: &Endpoint, config: &Config) -> usize {
    if endpoint.body.is_some_and(|body| has_media(body)) {
        config.max_body_bytes
    } else {
        config.max_body_bytes.min(crate::http::body::limits::PLAIN)
    }
}

/// Whether a row's body carries a file, anywhere in its fields (from the route table).
fn has_media(fields: &[schema::Field]) -> bool {
    fields.iter().any(|f| match &f.ty {
        FieldType::File => true,
        FieldType::Object(inner) => has_media(inner),
        FieldType::Objects { fields, .. } => has_media(fields),
        _ => false,
    })
}

pub fn parse_body(
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
pub fn tenant_session_name(ctx: &ProxyCtx<'_>) -> Result<Option<String>, ApiError> {
    Ok(match ctx.endpoint.session {
        SessionIn::Absent => None,
        SessionIn::Path => ctx.req.match_info().get("session").map(str::to_owned),
        SessionIn::Query(param) => Some(
            query_param(ctx.req.query_string(), param)
                .unwrap_or_else(|| DEFAULT_SESSION.to_owned()),
        ),
        SessionIn::Body(field) => match ctx.json.as_ref().and_then(|b| b.get(field)) {
            None | Some(Value::Null) => Some(DEFAULT_SESSION.to_owned()),
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ApiError::bad_request(format!("{field} must be a string"))),
        },
    })
}

/// Whether the row's body carries a session `config` (create and start).
pub fn takes_config(endpoint: &Endpoint) -> bool {
    endpoint
        .body
        .is_some_and(|fields| fields.iter().any(|f| f.name == "config"))
}

pub fn validate(ctx: &ProxyCtx<'_>) -> Result<(), ApiError> {
    let endpoint = ctx.endpoint;
    if let (Some(fields), Some(body)) = (endpoint.body, &ctx.json) {
        schema::validate(body, fields).map_err(|e| ApiError::bad_request(e.0))?;
        if takes_config(endpoint) {
            session_config::check_tenant_config(body)?;
        }
        check_body_session(ctx, body)?;
    }
    let query = ctx.req.query_string();
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

/// On a row whose path names the session, a `session` body field may only repeat it (it is
/// then removed before forwarding).
fn check_body_session(ctx: &ProxyCtx<'_>, body: &Value) -> Result<(), ApiError> {
    if ctx.endpoint.session != SessionIn::Path {
        return Ok(());
    }
    let named = ctx.req.match_info().get("session");
    match body.get("session") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if Some(s.as_str()) == named => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "session in the body must name the session of the path",
        )),
    }
}

/// The call in upstream names, with only the tenant's headers the upstream may see.
pub fn upstream_call(ctx: &mut ProxyCtx<'_>) -> Result<UpstreamCall, ApiError> {
    let body = rewrite_body(ctx)?;
    let upstream = ctx.upstream.as_ref();
    let mut headers = UpstreamCall::forwarded_headers(ctx.req.headers());
    // A body the gateway serialised goes as JSON whatever the tenant declared (an empty
    // `POST /v1/sessions` declares nothing, and the upstream would ignore an untyped body).
    if body.is_some() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    Ok(UpstreamCall {
        method: ctx.endpoint.method.clone(),
        path_and_query: with_declared_query(ctx, upstream),
        body,
        headers,
        request_id: ctx.req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        route: ctx.endpoint.path,
        retryable: ctx.endpoint.retryable(),
    })
}

/// The body to send: the tenant's, with the session named by its upstream name. Rows that
/// declare no body send none, whatever the tenant attached. The body is rewritten where it
/// lies rather than copied: what reads it after the send (`StopSession`'s `logout`) reads no
/// session field.
fn rewrite_body(ctx: &mut ProxyCtx<'_>) -> Result<Option<Bytes>, ApiError> {
    let Some(json) = &mut ctx.json else {
        return Ok(None);
    };
    match (ctx.endpoint.session, &ctx.upstream) {
        (SessionIn::Body(field), Some(upstream)) => {
            json[field] = Value::String(upstream.as_str().to_owned());
        }
        // The path names the session; a `session` field too would be a second opinion.
        (SessionIn::Path | SessionIn::Query(_), _) => {
            if let Value::Object(map) = json {
                map.remove("session");
            }
        }
        _ => {}
    }
    Ok(Some(Bytes::from(
        serde_json::to_vec(json).map_err(ApiError::internal)?,
    )))
}

/// The upstream path with only the row's declared query parameters, the session one renamed.
fn with_declared_query(ctx: &ProxyCtx<'_>, upstream: Option<&UpstreamSession>) -> String {
    let endpoint = ctx.endpoint;
    let session_param = match endpoint.session {
        SessionIn::Query(param) => Some(param),
        _ => None,
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in url::form_urlencoded::parse(ctx.req.query_string().as_bytes()) {
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
        format!("{}?{}", ctx.call_path, query.finish())
    } else {
        ctx.call_path.clone()
    }
}
