//! What the tenant gets back: the upstream's answer with only the headers a tenant may see,
//! its errors in the error shape without the organisation's internals, and what an
//! Idempotency-Key records of it.

use crate::http::error::{ApiError, ErrorBody};
use crate::services::idempotency::StoredAnswer;
use crate::services::upstream::{UpstreamAnswer, FORWARDED_ANSWER_HEADERS};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};
use bytes::Bytes;
use serde_json::Value;

/// An answer to a call the upstream received.
pub struct Answer {
    pub response: HttpResponse,
    /// The body an Idempotency-Key replays; `None` when it was streamed (never recorded).
    pub recorded: Option<Bytes>,
}

impl Answer {
    /// A failure once the upstream had the call: an outcome to record like any answer, never
    /// an error that would let a retry send it again.
    pub fn failed(error: &ApiError) -> Self {
        let body = Bytes::from(serde_json::to_vec(&error.body()).unwrap_or_default());
        Self {
            response: actix_web::ResponseError::error_response(error),
            recorded: Some(body),
        }
    }

    /// A JSON answer (`body` already in the tenant's terms).
    pub fn json(status: StatusCode, body: Bytes, upstream: &UpstreamAnswer) -> Self {
        let mut response = with_forwarded_headers(status, upstream);
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
        if status == StatusCode::TOO_MANY_REQUESTS {
            response.insert_header((header::RETRY_AFTER, retry_after(upstream).to_string()));
        }
        Self {
            response: response.body(body.clone()),
            recorded: Some(body),
        }
    }

    /// An upstream error in the error shape, from its JSON body if it had one.
    pub fn upstream_error(
        status: StatusCode,
        body: Option<&Value>,
        upstream: &UpstreamAnswer,
    ) -> Self {
        let message = body
            .and_then(error_message)
            .filter(|m| !marketplace_error(upstream) && !describes_the_account(m))
            .unwrap_or_else(|| neutral_message(status));
        let body = serde_json::to_vec(&ErrorBody::new(status, message)).unwrap_or_default();
        Self::json(status, Bytes::from(body), upstream)
    }

    /// A binary answer held whole, because an Idempotency-Key records it.
    pub fn buffered(status: StatusCode, body: Bytes, upstream: &UpstreamAnswer) -> Self {
        Self {
            response: with_forwarded_headers(status, upstream).body(body.clone()),
            recorded: Some(body),
        }
    }

    /// Binary answers (the QR PNG) are streamed with their content type, never buffered.
    pub fn streamed(upstream: UpstreamAnswer) -> Self {
        let mut response = with_forwarded_headers(upstream.status(), &upstream);
        Self {
            response: response.streaming(upstream.response),
            recorded: None,
        }
    }
}

/// A recorded answer, replayed for a repeated Idempotency-Key.
pub fn replay(stored: StoredAnswer) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status as u16).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    if let Some(ct) = stored.content_type {
        response.insert_header((header::CONTENT_TYPE, ct));
    }
    response.insert_header(("idempotent-replayed", "true"));
    response.body(stored.body)
}

/// What an Idempotency-Key keeps for a call dropped while the upstream may have had it (the
/// tenant went away mid-call): never a resend.
pub fn lost() -> StoredAnswer {
    let error = ErrorBody::new(
        StatusCode::BAD_GATEWAY,
        "the upstream may have received the call, but its answer was lost; do not resend blindly",
    );
    StoredAnswer {
        status: i32::from(StatusCode::BAD_GATEWAY.as_u16()),
        content_type: Some(mime::APPLICATION_JSON.to_string()),
        body: serde_json::to_vec(&error).unwrap_or_default(),
    }
}

/// A cached `contacts/check-exists` answer.
pub fn cached(body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(mime::APPLICATION_JSON)
        .body(body)
}

fn with_forwarded_headers(status: StatusCode, upstream: &UpstreamAnswer) -> HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    for name in FORWARDED_ANSWER_HEADERS {
        if let Some(value) = upstream.headers().get(name) {
            response.insert_header((name.clone(), value.clone()));
        }
    }
    response
}

/// Whole seconds, at least 1 (every 429 must carry it).
fn retry_after(upstream: &UpstreamAnswer) -> u64 {
    upstream
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .max(1)
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

/// The upstream's `message`, or one built from the engine's object errors (`{error, status,
/// expected}`, `{detail}`); nothing else of the upstream's internals (a 500's `exception`).
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
