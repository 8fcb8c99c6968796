//! The edge: what every request meets before routing (methods, URI length), the extractors'
//! limits and error shapes, and the answer for a path nothing serves.

use crate::http::body::{self, BodyDeadline};
use crate::http::error::{json_error, path_error, query_error, truncated, ApiError};
use crate::http::state::AppState;
use crate::metrics::SERVED_METHODS;
use crate::telemetry::{RequestId, REQUEST_ID_HEADER};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};
use std::time::Instant;
use tracing::Instrument;

/// Longest request target (path and query) served. The hosted API's longest paths are well
/// under 1 KiB; actix itself admits a head of 128 KiB.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// What an `Allow` header says of a method no resource serves: the methods the gateway serves.
const SERVED_METHODS_ALLOW: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// Whether routing may see the method: the served ones, and TRACE and CONNECT, the standard
/// methods no route serves, which routing answers 405 with the resource's own `Allow` (a fixed
/// set, so they cannot grow anything). Any other token is an extension method.
fn routable(method: &Method) -> bool {
    SERVED_METHODS.contains(method) || *method == Method::TRACE || *method == Method::CONNECT
}

/// Middleware, outermost: an extension method answers 405 (with `Allow`) and a longer URI 414,
/// in the error shape, before routing, logging or metrics spend anything on the request.
pub async fn refuse_at_the_edge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let refusal = if !routable(req.method()) {
        Some(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "method {} is not served; use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
                crate::http::error::truncated(req.method().as_str())
            ),
        ))
    } else if uri_length(req.uri()) > MAX_URI_BYTES {
        Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("the request URI is longer than {MAX_URI_BYTES} bytes"),
        ))
    } else {
        None
    };
    match refusal {
        Some(refusal) => {
            let mut res = req.error_response(refusal);
            if res.status() == StatusCode::METHOD_NOT_ALLOWED {
                res.headers_mut().insert(
                    actix_web::http::header::ALLOW,
                    actix_web::http::header::HeaderValue::from_static(SERVED_METHODS_ALLOW),
                );
            }
            Ok(res.map_into_right_body())
        }
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
    }
}

/// The request target's length, without building it again: path and query (and the authority
/// of an absolute-form target).
fn uri_length(uri: &actix_web::http::Uri) -> usize {
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    authority + uri.path_and_query().map_or(0, |pq| pq.as_str().len())
}

/// The body deadline and the extractors' limits and error shapes. Extractors (the admin API
/// and the login) get the admin limit; handlers that accept more read `web::Payload` through
/// `body::read` with their own.
pub fn request_limits(cfg: &mut web::ServiceConfig, body_timeout: std::time::Duration) {
    cfg.app_data(BodyDeadline(body_timeout))
        .app_data(
            web::JsonConfig::default()
                .limit(body::limits::ADMIN)
                .error_handler(json_error),
        )
        .app_data(web::PayloadConfig::new(body::limits::ADMIN))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error));
}

pub async fn unknown_route(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        crate::http::error::truncated(req.path())
    )))
}

// ---- the request's context ---------------------------------------------------------------

/// Accepts a client's id only if it is short and printable, so it cannot forge log lines.
fn acceptable_request_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| s.to_owned())
}

/// Middleware: request id, a span around the request, metrics and one access-log line.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(acceptable_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %truncated(req.method().as_str()),
        path = %truncated(req.path()),
    );
    let started = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;

    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    if let Some(metrics) = metrics {
        metrics.observe_request(res.request().method(), &route, res.status(), elapsed);
    }
    span.in_scope(|| {
        tracing::info!(status, route = %route, elapsed_ms = elapsed.as_secs_f64() * 1e3, "served");
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(res)
}
