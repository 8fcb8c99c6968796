//! Around every `/v1` call: the log entry as received, the injected faults, then the hosted
//! API's plan checks in its order (key and host 401, per-second 429, monthly quota 429), and
//! the quota headers on the answer.

use super::faults::{self, Effect};
use super::log::LogEntry;
use super::state::SimState;
use crate::http::error::ApiError;
use actix_web::body::BoxBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use bytes::{Bytes, BytesMut};
use chrono::{Datelike, TimeZone, Utc};
use futures_util::StreamExt;
use std::os::fd::{AsRawFd, RawFd};

/// Largest request body the simulator reads (base64 media travels in JSON).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// The connection's socket, kept so a `drop` fault can close it without answering.
#[derive(Clone, Copy)]
struct Socket(RawFd);

pub fn remember_socket(
    connection: &dyn std::any::Any,
    extensions: &mut actix_web::dev::Extensions,
) {
    if let Some(stream) = connection.downcast_ref::<actix_rt::net::TcpStream>() {
        extensions.insert(Socket(stream.as_raw_fd()));
    }
}

pub async fn plan_and_log(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<SimState>>()
        .expect("simulator state")
        .clone();
    let Some(body) = read_body(&mut req).await? else {
        let e = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than the limit",
        );
        return Ok(req.into_response(e.error_response()));
    };
    let seq = state.next_id();
    state.log_call(LogEntry::new(
        seq,
        req.method().as_str(),
        req.path(),
        req.query_string(),
        req.headers(),
        &body,
    ));
    req.set_payload(Payload::from(body));
    let finish = |res: ServiceResponse<BoxBody>| {
        state.log_status(seq, res.status().as_u16());
        res
    };

    let effect = faults::take(
        &mut state.faults.lock().unwrap(),
        req.method().as_str(),
        req.path(),
    );
    let garble = effect.as_ref().is_some_and(|e| e.garble);
    if let Some(effect) = effect {
        if let Some(answer) = inject(&req, effect).await? {
            return Ok(finish(req.into_response(answer)));
        }
    }
    // A call refused for its credentials spends none of the plan.
    let refusal = match check_credentials(&state, &req) {
        Err(e) => Some(e.error_response()),
        Ok(()) => admit(&state)
            .err()
            .map(|e| quota_headers(&state, e.error_response())),
    };
    if let Some(refusal) = refusal {
        return Ok(finish(req.into_response(refusal)));
    }
    let (req, response) = next.call(req).await?.into_parts();
    let response = if garble {
        // Served (the session acted), but the answer is not the JSON it claims to be.
        HttpResponse::build(response.status())
            .content_type("application/json")
            .body("{\"id\": \"broken")
    } else {
        response
    };
    let response = quota_headers(&state, response);
    Ok(finish(ServiceResponse::new(req, response)))
}

/// The whole body (Content-Length or chunked), to log it; `None` past `MAX_BODY`.
async fn read_body(req: &mut ServiceRequest) -> Result<Option<Bytes>, actix_web::Error> {
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > MAX_BODY {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// What a fault does before the call is served: it waits, then drops the connection (an
/// error, so nothing is answered) or answers in the endpoint's place, or lets the call through.
async fn inject(
    req: &ServiceRequest,
    effect: Effect,
) -> Result<Option<HttpResponse>, actix_web::Error> {
    if let Some(delay) = effect.delay {
        tokio::time::sleep(delay).await;
    }
    if effect.drop {
        if let Some(Socket(fd)) = req.conn_data::<Socket>().copied() {
            // The connection is alive while its request is served, so the fd is ours.
            let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Both);
        }
        return Err(actix_web::error::ErrorServiceUnavailable("dropped"));
    }
    let Some((status, message, retry_after)) = effect.error else {
        return Ok(None);
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(body) = effect.body {
        return Ok(Some(HttpResponse::build(status).json(body)));
    }
    let mut error = ApiError::new(status, message);
    if let Some(secs) = retry_after {
        error = error.with_retry_after(secs);
    }
    Ok(Some(error.error_response()))
}

fn check_credentials(state: &SimState, req: &ServiceRequest) -> Result<(), ApiError> {
    let Some(expected) = state.options.key.as_deref() else {
        return Ok(());
    };
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    match header("x-rapidapi-key") {
        None => {
            return Err(ApiError::unauthorized(
                "Missing x-rapidapi-key header: get your key on the RapidAPI dashboard",
            ))
        }
        Some(key) if key != expected => return Err(ApiError::unauthorized("Invalid API key")),
        Some(_) => {}
    }
    match header("x-rapidapi-host") {
        Some(host) if host == state.options.host => Ok(()),
        Some(_) => Err(ApiError::unauthorized(
            "Invalid x-rapidapi-host header for this API",
        )),
        None => Err(ApiError::unauthorized("Missing x-rapidapi-host header")),
    }
}

/// The per-second limit, then the monthly quota, which every admitted call spends (even one
/// the endpoint then refuses, as on the hosted API).
fn admit(state: &SimState) -> Result<(), ApiError> {
    let now = Utc::now();
    if let Some(rps) = state.options.rps {
        let second = now.timestamp() as u64;
        if !state.rate.lock().unwrap().spend(second, u64::from(rps)) {
            return Err(ApiError::too_many_requests(
                format!("Rate limit exceeded: {rps} requests per second"),
                1,
            ));
        }
    }
    if let Some(limit) = state.options.monthly {
        let month = now.format("%Y-%m").to_string();
        if !state.monthly.lock().unwrap().spend(month, limit) {
            return Err(ApiError::too_many_requests(
                "You have exceeded the MONTHLY quota for Requests on your current plan",
                seconds_to_month_end(now),
            ));
        }
    }
    Ok(())
}

fn seconds_to_month_end(now: chrono::DateTime<Utc>) -> u64 {
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    let next = Utc
        .with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .unwrap_or(now);
    (next - now).num_seconds().max(1) as u64
}

/// RapidAPI's quota headers, when a monthly quota is set (the gateway's quota module reads them).
fn quota_headers(state: &SimState, mut response: HttpResponse) -> HttpResponse {
    let Some(limit) = state.options.monthly else {
        return response;
    };
    let used = state.monthly.lock().unwrap().used;
    let headers = response.headers_mut();
    let mut put = |name: &'static str, value: u64| {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    };
    put("x-ratelimit-requests-limit", limit);
    put("x-ratelimit-requests-remaining", limit.saturating_sub(used));
    put(
        "x-ratelimit-requests-reset",
        seconds_to_month_end(Utc::now()),
    );
    response
}
