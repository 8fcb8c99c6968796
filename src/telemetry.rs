//! Logging and the request context: every request gets an id (taken from `X-Request-Id` or
//! made), echoed on the response and carried by every log line of that request.

use crate::config::LogFormat;
use crate::metrics::Metrics;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use std::time::Instant;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Installs the global subscriber once; later calls (tests start many apps) are no-ops.
pub fn init(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    // actix-http logs a client's malformed request (a NUL byte in a header...) at ERROR after
    // answering it 400: not our failure, and a way for anyone to flood the error log. Kept
    // unless RUST_LOG names actix_http itself.
    if !std::env::var("RUST_LOG").is_ok_and(|v| v.contains("actix_http")) {
        filter = filter.add_directive(
            "actix_http::h1::dispatcher=off"
                .parse()
                .expect("a valid directive"),
        );
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

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
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %crate::http::error::truncated(req.method().as_str()),
        path = %crate::http::error::truncated(req.path()),
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
        metrics.observe_request(res.request().method(), &route, status, elapsed);
    }
    span.in_scope(|| {
        tracing::info!(status, route = %route, elapsed_ms = elapsed.as_secs_f64() * 1e3, "served");
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(res)
}
