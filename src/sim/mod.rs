//! The upstream simulator: the hosted WhatsApp Messaging REST API, faithfully, on this machine.
//!
//! It follows the seed document first and docs/UPSTREAM.md (the engine's behaviour) second, and shares no
//! code with the gateway's forwarding path (`crate::http::routes`), so the gateway's tests measure
//! the gateway against an independent reading of the API. It serves `wa-gateway sim`, the
//! sandbox upstream of `serve` without a key, and every test that needs an upstream.
//!
//! - `/v1/...`: every endpoint of the seed, stateful per session (`api`), behind the plan
//!   checks of the hosted API (key and host, per-second rate, monthly quota) and the log.
//! - `/_sim/...`: the control API for tests and demos (`control`).

mod api;
mod control;
mod error;
mod faults;
mod lifecycle;
mod log;
mod qr;
mod state;
mod webhooks;

pub use webhooks::sign as webhook_signature;

use crate::http::error::{shape_plain_errors, ApiError};
use actix_web::body::BoxBody;
use actix_web::dev::{Payload, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{from_fn, ErrorHandlers, Next};
use actix_web::{web, App, HttpMessage, HttpResponse, HttpServer, ResponseError};
use bytes::BytesMut;
use chrono::{Datelike, TimeZone, Utc};
use futures_util::StreamExt;
use state::SimState;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

/// The hosted API's host, expected in `x-rapidapi-host`.
pub const DEFAULT_HOST: &str = "whatsapp-messaging-bot.p.rapidapi.com";

/// Largest request body the simulator reads (base64 media travels in JSON).
const MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Where to listen; port 0 lets the OS choose (`RunningSim::port`).
    pub listen: SocketAddr,
    /// The subscription key expected in `x-rapidapi-key`; `None`: any caller is accepted.
    pub key: Option<String>,
    /// The value expected in `x-rapidapi-host` (checked together with the key).
    pub host: String,
    /// Calls per second before 429; `None`: unlimited.
    pub rps: Option<u32>,
    /// Calls per calendar month (UTC) before 429; `None`: unlimited.
    pub monthly: Option<u64>,
    /// Scan a session by itself this long after its QR or pairing code is first fetched.
    pub auto_scan: Option<Duration>,
    /// How long the first QR code lives, then each later one, and how many there are before
    /// the session goes FAILED (the upstream: 60 s, 20 s, 6).
    pub qr_first_ttl: Duration,
    pub qr_ttl: Duration,
    pub max_qr_codes: u32,
    /// How long a call waits for the session status it needs before its 422. The engine waits
    /// 5 s (`ENGINE_STATUS_WAIT`, ENGINE.md §1); the default is none, so tests that expect a
    /// 422 do not wait for it.
    pub status_wait: Duration,
    pub workers: usize,
}

/// The engine's wait for a session status before it answers 422 (ENGINE.md §1).
pub const ENGINE_STATUS_WAIT: Duration = Duration::from_secs(5);

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            key: None,
            host: DEFAULT_HOST.to_owned(),
            rps: None,
            monthly: None,
            auto_scan: None,
            qr_first_ttl: Duration::from_secs(60),
            qr_ttl: Duration::from_secs(20),
            max_qr_codes: 6,
            status_wait: Duration::ZERO,
            workers: 2,
        }
    }
}

pub struct Simulator;

impl Simulator {
    /// Binds `opts.listen` and serves on the current tokio runtime (a plain `#[tokio::test]`,
    /// the gateway's runtime, or the CLI's). Webhooks leave from a thread of their own.
    pub async fn start(options: SimOptions) -> anyhow::Result<RunningSim> {
        let listener = std::net::TcpListener::bind(options.listen)
            .map_err(|e| anyhow::anyhow!("simulator: binding {}: {e}", options.listen))?;
        let address = listener.local_addr()?;
        let (jobs, queue) = webhooks::channel();
        let workers = options.workers.max(1);
        let state = Arc::new(SimState::new(options, jobs));
        let delivery = webhooks::spawn_delivery_thread(state.clone(), queue)?;
        let data = web::Data::from(state.clone());
        let server =
            HttpServer::new(move || {
                App::new()
                    .wrap(ErrorHandlers::new().default_handler(shape_plain_errors))
                    .app_data(data.clone())
                    .app_data(web::PayloadConfig::new(MAX_BODY))
                    .app_data(web::PathConfig::default().error_handler(|e, _| {
                        ApiError::not_found(format!("not found: {e}")).into()
                    }))
                    .configure(control::routes)
                    .service(
                        web::scope("/v1")
                            .wrap(from_fn(plan_and_log))
                            .configure(api::routes)
                            .default_service(web::to(api::unknown_route)),
                    )
                    .default_service(web::to(api::unknown_route))
            })
            .on_connect(remember_socket)
            .workers(workers)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)?
            .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(RunningSim {
            port: address.port(),
            handle,
            task,
            state,
            delivery: Some(delivery),
        })
    }
}

pub struct RunningSim {
    port: u16,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    state: Arc<SimState>,
    delivery: Option<std::thread::JoinHandle<()>>,
}

impl RunningSim {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` (no `/v1`): the gateway's `WAGW_UPSTREAM_URL`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn key(&self) -> Option<&str> {
        self.state.options.key.as_deref()
    }

    pub fn host(&self) -> &str {
        &self.state.options.host
    }

    /// Stops serving and drops pending webhook retries (they live in memory, as upstream).
    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        let _ = (&mut self.task).await;
        self.state.close_deliveries();
        if let Some(thread) = self.delivery.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// The connection's socket, kept so a `drop` fault can close it without answering.
#[derive(Clone, Copy)]
struct Socket(RawFd);

fn remember_socket(connection: &dyn std::any::Any, extensions: &mut actix_web::dev::Extensions) {
    if let Some(stream) = connection.downcast_ref::<actix_rt::net::TcpStream>() {
        extensions.insert(Socket(stream.as_raw_fd()));
    }
}

/// Every `/v1` call: logged as received, then faults, then the hosted API's plan checks in
/// its order (key and host 401, per-second 429, monthly quota 429), then the endpoint.
async fn plan_and_log(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<SimState>>()
        .expect("simulator state")
        .clone();

    // Read the whole body (Content-Length or chunked) to log it, then hand it back.
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > MAX_BODY {
            let e = ApiError::new(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                "request body is larger than the limit",
            );
            return Ok(req.into_response(e.error_response()));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let seq = state.next_id();
    {
        let mut log = state.log.lock().unwrap();
        if log.len() >= state::LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(log::LogEntry::new(
            seq,
            req.method().as_str(),
            req.path(),
            req.query_string(),
            req.headers(),
            &body,
        ));
    }
    req.set_payload(Payload::from(body));

    let effect = faults::take(
        &mut state.faults.lock().unwrap(),
        req.method().as_str(),
        req.path(),
    );
    let garble = effect.as_ref().is_some_and(|e| e.garble);
    if let Some(effect) = effect {
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
        if let Some((status, message, retry_after)) = effect.error {
            let status = actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
            if let Some(body) = effect.body {
                let response = HttpResponse::build(status).json(body);
                return Ok(finish(&state, seq, req.into_response(response)));
            }
            let mut error = ApiError::new(status, message);
            if let Some(secs) = retry_after {
                error = error.with_retry_after(secs);
            }
            return Ok(finish(
                &state,
                seq,
                req.into_response(error.error_response()),
            ));
        }
    }

    if let Err(e) = check_credentials(&state, &req) {
        return Ok(finish(&state, seq, req.into_response(e.error_response())));
    }
    if let Err(e) = admit(&state) {
        let response = quota_headers(&state, e.error_response());
        return Ok(finish(&state, seq, req.into_response(response)));
    }
    let response = next.call(req).await?;
    let (req, response) = response.into_parts();
    let response = if garble {
        // Served (the session acted), but the answer is not the JSON it claims to be.
        HttpResponse::build(response.status())
            .content_type("application/json")
            .body("{\"id\": \"broken")
    } else {
        response
    };
    let response = quota_headers(&state, response);
    Ok(finish(&state, seq, ServiceResponse::new(req, response)))
}

/// Notes the answered status in the log entry.
fn finish(state: &SimState, seq: u64, res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let mut log = state.log.lock().unwrap();
    if let Some(entry) = log.iter_mut().rev().find(|e| e.seq == seq) {
        entry.status = Some(res.status().as_u16());
    }
    res
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
        let mut window = state.rate.lock().unwrap();
        if window.second != second {
            window.second = second;
            window.count = 0;
        }
        if window.count >= rps {
            return Err(ApiError::too_many_requests(
                format!("Rate limit exceeded: {rps} requests per second"),
                1,
            ));
        }
        window.count += 1;
    }
    if let Some(limit) = state.options.monthly {
        let month = now.format("%Y-%m").to_string();
        let mut counter = state.monthly.lock().unwrap();
        if counter.month != month {
            counter.month = month;
            counter.used = 0;
        }
        if counter.used >= limit {
            return Err(ApiError::too_many_requests(
                "You have exceeded the MONTHLY quota for Requests on your current plan",
                seconds_to_month_end(now),
            ));
        }
        counter.used += 1;
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
