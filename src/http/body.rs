//! Request bodies, never read without bounds: a size limit per route (413), a deadline for the
//! whole body (408, enforced by [`deadline`] around the payload stream), and JSON turned into a
//! `serde_json::Value` only when the tree it builds stays within a few times the body's size.
//!
//! Handlers take `web::Payload` (or [`Unread`]) and read it after the caller is authenticated,
//! so a stranger's body is never buffered.

use crate::http::error::{payload_error, ApiError};
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Route limits, in bytes. Media rows take `WAGW_MAX_BODY_BYTES` instead.
pub mod limits {
    /// `/admin/v1` and the login: small JSON documents.
    pub const ADMIN: usize = 64 * 1024;
    /// Events the upstream posts to the ingress.
    pub const INGRESS: usize = 2 * 1024 * 1024;
    /// `/v1` rows without media.
    pub const PLAIN: usize = 256 * 1024;
}

/// Reads the whole body, refusing more than `limit` bytes with 413 (at once when the
/// `Content-Length` says so) and a body that outlives the deadline with 408.
pub async fn read(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = declared_length(req.headers());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| payload_error(&e))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A `/v1` handler's body, taken as an argument but not read yet: the handler reads it (within
/// `limits::PLAIN`) once it knows the call may go on, so a body is never buffered for a caller
/// who may not make the call.
pub struct Unread {
    req: HttpRequest,
    payload: web::Payload,
}

impl FromRequest for Unread {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let payload = web::Payload::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            Ok(Self {
                req,
                payload: payload.await?,
            })
        })
    }
}

impl Unread {
    /// The body as JSON, `None` when it is empty ([`json`] says what else it refuses).
    pub async fn json(self) -> Result<Option<Value>, ApiError> {
        let raw = read(&self.req, self.payload, limits::PLAIN).await?;
        json(&self.req, &raw)
    }
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than this route's limit of {limit} bytes"),
    )
}

// ---- the body deadline --------------------------------------------------------------------

/// How long a request's body may take to arrive, from the moment its head was read.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Duration);

/// Middleware: the payload of a request that carries a body fails with a timeout once the
/// deadline passes. Requests without a body and protocol upgrades (WebSockets, whose payload is
/// the connection itself) are left alone, so nothing that streams is ever cut.
pub async fn deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = req.app_data::<BodyDeadline>().map(|d| d.0);
    if let Some(limit) = limit {
        if has_body(req.headers()) && !req.headers().contains_key(header::UPGRADE) {
            let inner = req.take_payload();
            let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
                Box::pin(Deadlined {
                    inner,
                    due: tokio::time::Instant::now() + limit,
                    timer: None,
                    expired: false,
                });
            req.set_payload(Payload::Stream { payload: stream });
        }
    }
    next.call(req).await
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || declared_length(headers).is_some_and(|len| len > 0)
}

/// A payload stream that ends in a timeout error once its deadline passes. The timer is set
/// only when the body keeps the request waiting: most bodies arrive with their headers, and
/// those then never register (and clear) a timer.
struct Deadlined {
    inner: Payload,
    due: tokio::time::Instant,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: bool,
}

impl Stream for Deadlined {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        let due = self.due;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.expired = true;
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "request body deadline",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

// ---- bounded JSON -------------------------------------------------------------------------

/// A JSON request body: `None` when empty, 415 for another content type, 413 when the tree it
/// would build costs more than [`MAX_COST_FACTOR`] times its size (plus [`COST_SLACK`]), 400 when
/// malformed.
pub fn json(req: &HttpRequest, body: &[u8]) -> Result<Option<Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let is_json = req
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ));
    }
    let cost = tree_cost(body);
    if cost > MAX_COST_FACTOR * body.len() + COST_SLACK {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the JSON body holds too many values for its size",
        ));
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))
}

/// A parsed tree may cost at most this many times the body's bytes...
pub const MAX_COST_FACTOR: usize = 4;
/// ...plus this much, so that small dense documents (a group's 1,000 participants) pass.
pub const COST_SLACK: usize = 1024 * 1024;

/// What `serde_json` would allocate for this document, estimated from one pass over its bytes
/// without building anything: each value, each object member and each container at its
/// in-memory size (with growth slack), plus the text of its strings.
pub fn tree_cost(body: &[u8]) -> usize {
    const VALUE: usize = std::mem::size_of::<Value>() * 3 / 2;
    const MEMBER: usize =
        (std::mem::size_of::<String>() + std::mem::size_of::<Value>() + 16) * 3 / 2;
    const CONTAINER: usize = 64;
    let (mut values, mut members, mut containers, mut text) = (0usize, 0usize, 0usize, 0usize);
    // A value starts at the first significant byte at the start or after `{`, `[`, `,` or `:`
    // (keys count as values too, which only overestimates).
    let mut expect_value = true;
    let mut bytes = body.iter();
    while let Some(&b) = bytes.next() {
        if b.is_ascii_whitespace() {
            continue;
        }
        if expect_value {
            values += 1;
            expect_value = false;
        }
        match b {
            b'"' => {
                // Skip the string, counting its bytes; a backslash escapes the next byte.
                while let Some(&c) = bytes.next() {
                    match c {
                        b'"' => break,
                        b'\\' => {
                            bytes.next();
                        }
                        _ => {}
                    }
                    text += 1;
                }
            }
            b'{' | b'[' => {
                containers += 1;
                expect_value = true;
            }
            b',' => expect_value = true,
            b':' => {
                members += 1;
                expect_value = true;
            }
            _ => {}
        }
    }
    values * VALUE + members * MEMBER + containers * CONTAINER + text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_padded_array_costs_far_more_than_its_size() {
        let mut body = br#"{"chatId":"1@c.us","text":"x","pad":["#.to_vec();
        body.extend(std::iter::repeat_n(b"0,".as_slice(), 500_000).flatten());
        body.extend_from_slice(b"0]}");
        assert!(tree_cost(&body) > MAX_COST_FACTOR * body.len() + COST_SLACK);
    }

    #[test]
    fn media_and_ordinary_bodies_pass() {
        let data = "A".repeat(8 * 1024 * 1024);
        let media = format!(r#"{{"file":{{"mimetype":"image/png","data":"{data}"}}}}"#);
        assert!(tree_cost(media.as_bytes()) < 2 * media.len());
        let participants: Vec<String> = (0..1000)
            .map(|i| format!(r#"{{"id":"49170000{i:04}@c.us"}}"#))
            .collect();
        let group = format!(
            r#"{{"name":"g","participants":[{}]}}"#,
            participants.join(",")
        );
        assert!(tree_cost(group.as_bytes()) <= MAX_COST_FACTOR * group.len() + COST_SLACK);
    }

    #[test]
    fn escaped_quotes_do_not_end_a_string() {
        // One string holding `",0,0,0` and then one number: two values, not five.
        let cost = tree_cost(br#"["\",0,0,0",1]"#);
        let plain = tree_cost(br#"["abcdefg",1]"#);
        assert_eq!(cost, plain);
    }
}
