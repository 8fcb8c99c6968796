//! Logging, and the request id every log line of a request carries (the middleware that
//! assigns it is `http::edge::request_context`).

use crate::config::LogFormat;
use actix_web::http::header::HeaderName;
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
