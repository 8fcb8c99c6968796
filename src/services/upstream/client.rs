//! The awc client that talks to the hosted API: one per worker (awc is `!Send`), pooled
//! connections, timeouts from configuration, redirects never followed, the organisation's key
//! added here and nowhere else.

use super::error::{UpstreamError, UpstreamErrorKind as Kind};
use crate::config::UpstreamConfig;
use crate::metrics::Metrics;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::web;
use awc::error::{ConnectError, SendRequestError};
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use secrecy::ExposeSecret;
use std::time::{Duration, Instant};

/// Largest JSON answer we buffer to rewrite session names (media is streamed, not buffered).
const MAX_JSON_ANSWER: usize = 64 * 1024 * 1024;

/// Request headers a tenant may pass on. Everything else (its credentials above all, the
/// hop-by-hop headers of RFC 9110 §7.6.1, cookies) stays here.
const FORWARDED_REQUEST_HEADERS: &[HeaderName] = &[
    header::CONTENT_TYPE,
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
];

/// Answer headers a tenant may see. The upstream's rate-limit headers describe the
/// organisation's plan, not the tenant's, so they are not among them.
pub const FORWARDED_ANSWER_HEADERS: &[HeaderName] = &[
    header::CONTENT_TYPE,
    header::CONTENT_DISPOSITION,
    header::CACHE_CONTROL,
    header::ETAG,
    header::LAST_MODIFIED,
];

pub const RAPIDAPI_KEY: HeaderName = HeaderName::from_static("x-rapidapi-key");
pub const RAPIDAPI_HOST: HeaderName = HeaderName::from_static("x-rapidapi-host");

/// One call to make.
pub struct UpstreamCall {
    pub method: Method,
    /// `/v1/...` with the query string, already rewritten to upstream names.
    pub path_and_query: String,
    pub body: Option<Bytes>,
    /// Only `FORWARDED_REQUEST_HEADERS` are ever sent, whatever else this holds.
    pub headers: HeaderMap,
    pub request_id: Option<String>,
    /// The upstream route template (`/v1/sessions/{session}`), for metrics.
    pub route: &'static str,
    /// Safe to repeat (GET): retried on connect errors, 502, 503 and 429.
    pub retryable: bool,
}

impl UpstreamCall {
    /// A call of the gateway's own (admin routes, background work): no tenant's headers, a
    /// JSON body when there is one, GETs retryable.
    pub fn own(
        method: Method,
        path_and_query: String,
        route: &'static str,
        body: Option<&serde_json::Value>,
    ) -> Self {
        let mut headers = HeaderMap::new();
        if body.is_some() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        Self {
            retryable: method == Method::GET,
            method,
            path_and_query,
            body: body.map(|b| Bytes::from(b.to_string())),
            headers,
            request_id: None,
            route,
        }
    }

    /// The tenant's headers the upstream may see, and nothing else of them.
    pub fn forwarded_headers(tenant: &HeaderMap) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for name in FORWARDED_REQUEST_HEADERS {
            if let Some(value) = tenant.get(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        headers
    }
}

/// The answer, headers received; the body is still to be read (or streamed).
pub struct UpstreamAnswer {
    pub response: awc::ClientResponse<actix_web::dev::Decompress<actix_web::dev::Payload>>,
}

impl UpstreamAnswer {
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    pub fn is_json(&self) -> bool {
        self.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"))
    }

    /// Reads the whole body (JSON answers, to rewrite them). The request was sent: a failure
    /// here is one of a call the upstream may have acted on.
    pub async fn read_body(&mut self) -> Result<Bytes, UpstreamError> {
        self.response
            .body()
            .limit(MAX_JSON_ANSWER)
            .await
            .map_err(|e| UpstreamError::after_sending(Kind::Unreadable(e.to_string())))
    }
}

/// A JSON answer's body parsed, to be rewritten.
pub fn parse_json(raw: &[u8]) -> Result<serde_json::Value, UpstreamError> {
    serde_json::from_slice(raw).map_err(|e| UpstreamError::after_sending(Kind::MalformedJson(e)))
}

/// A JSON answer's body checked to be JSON without building it: an answer passed on as it
/// came is refused for the same bodies as one that is rewritten.
pub fn check_json(raw: &[u8]) -> Result<(), UpstreamError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(raw)
        .map(drop)
        .map_err(|e| UpstreamError::after_sending(Kind::MalformedJson(e)))
}

/// The replica's in-process simulator that serves test keys, which clients are built for (one
/// per thread: awc clients cannot cross threads): where it is and the key presented to it.
#[derive(Clone)]
pub struct TestUpstream {
    pub config: UpstreamConfig,
    pub key: secrecy::SecretString,
}

impl TestUpstream {
    /// A client whose calls stay out of the upstream's metrics: they are not the upstream's.
    pub fn client(&self, metrics: web::Data<Metrics>) -> UpstreamClient {
        UpstreamClient {
            metered: false,
            ..UpstreamClient::new(&self.config, &self.key, metrics)
        }
    }
}

/// The two upstreams a replica calls: the hosted API for live keys, and the replica's own
/// in-process simulator for test keys (started with the replica, `startup`).
#[derive(Clone, Copy)]
pub struct Upstreams<'a> {
    pub live: &'a UpstreamClient,
    pub test: &'a UpstreamClient,
}

impl<'a> Upstreams<'a> {
    /// Where a call made in `mode` goes: a test call never reaches the hosted API.
    pub fn of(&self, mode: crate::domain::Mode) -> &'a UpstreamClient {
        match mode {
            crate::domain::Mode::Live => self.live,
            crate::domain::Mode::Test => self.test,
        }
    }
}

pub struct UpstreamClient {
    http: awc::Client,
    base: String,
    key: HeaderValue,
    host: HeaderValue,
    get_attempts: u32,
    get_retry_budget: Duration,
    metrics: web::Data<Metrics>,
    /// Whether calls are observed in the upstream metrics (not the test simulator's).
    metered: bool,
}

impl UpstreamClient {
    /// Built inside each worker: awc clients cannot cross threads.
    pub fn new(
        config: &UpstreamConfig,
        key: &secrecy::SecretString,
        metrics: web::Data<Metrics>,
    ) -> Self {
        let connector = awc::Connector::new()
            .timeout(config.connect_timeout)
            // Calls in flight are bounded by configuration (WAGW_UPSTREAM_MAX_CONNECTIONS,
            // this worker's share), not by a constant.
            .limit(config.pool_per_worker)
            .conn_keep_alive(Duration::from_secs(30));
        let http = awc::Client::builder()
            .connector(connector)
            .timeout(config.request_timeout)
            .disable_redirects()
            .no_default_headers()
            .finish();
        let mut key = HeaderValue::from_str(key.expose_secret())
            .expect("the upstream key is a valid header value");
        // Keeps the organisation's key out of any debug output of the request.
        key.set_sensitive(true);
        Self {
            http,
            base: config.url.as_str().trim_end_matches('/').to_owned(),
            key,
            host: HeaderValue::from_str(&config.host)
                .expect("the upstream host is a valid header value"),
            get_attempts: config.get_attempts.max(1),
            get_retry_budget: config.get_retry_budget,
            metrics,
            metered: true,
        }
    }

    /// Sends the call; GETs are retried with exponential backoff and jitter on connect errors,
    /// 502, 503 and 429, within the configured attempts and time budget. Other calls are sent
    /// once: a send is never repeated blindly.
    pub async fn send(&self, call: &UpstreamCall) -> Result<UpstreamAnswer, UpstreamError> {
        if !call.retryable || self.get_attempts == 1 {
            return self.send_once(call).await;
        }
        let started = Instant::now();
        let budget = self.get_retry_budget;
        let attempt = || async {
            match self.send_once(call).await {
                Ok(answer) if is_transient(answer.status()) && started.elapsed() < budget => {
                    Err(Attempt::Transient(answer))
                }
                Ok(answer) => Ok(answer),
                Err(e) => Err(Attempt::Failed(e)),
            }
        };
        let retried = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(2))
                    .with_jitter()
                    .with_max_times(self.get_attempts as usize - 1)
                    .with_total_delay(Some(budget)),
            )
            // A timeout already spent the budget; anything else is worth another try in it.
            .when(|a| {
                !matches!(
                    a,
                    Attempt::Failed(UpstreamError {
                        kind: Kind::TimedOut,
                        ..
                    })
                ) && started.elapsed() < budget
            })
            .notify(|_, wait| {
                tracing::debug!(route = call.route, ?wait, "retrying the upstream call")
            })
            .await;
        match retried {
            Ok(answer) => Ok(answer),
            // The last transient answer is the answer: the tenant sees the upstream's 503/429.
            Err(Attempt::Transient(answer)) => Ok(answer),
            Err(Attempt::Failed(e)) => Err(e),
        }
    }

    async fn send_once(&self, call: &UpstreamCall) -> Result<UpstreamAnswer, UpstreamError> {
        let url = format!("{}{}", self.base, call.path_and_query);
        let mut request = self
            .http
            .request(call.method.clone(), &url)
            .insert_header((RAPIDAPI_KEY, self.key.clone()))
            .insert_header((RAPIDAPI_HOST, self.host.clone()));
        // Filtered again here: whatever a caller put in `headers`, only these leave.
        for name in FORWARDED_REQUEST_HEADERS {
            if let Some(value) = call.headers.get(name) {
                request = request.insert_header((name.clone(), value.clone()));
            }
        }
        if let Some(id) = &call.request_id {
            request = request.insert_header(("x-request-id", id.as_str()));
        }
        let started = Instant::now();
        let sent = match &call.body {
            Some(body) => request.send_body(body.clone()).await,
            None => request.send().await,
        };
        if self.metered {
            let answered = sent.as_ref().map(|response| response.status());
            let outcome = match &answered {
                Ok(status) => status.as_str(),
                Err(SendRequestError::Timeout)
                | Err(SendRequestError::Connect(ConnectError::Timeout)) => "timeout",
                Err(_) => "error",
            };
            self.metrics
                .observe_upstream(call.route, outcome, started.elapsed());
        }
        match sent {
            Ok(response) => Ok(UpstreamAnswer { response }),
            Err(SendRequestError::Timeout) => Err(UpstreamError::after_sending(Kind::TimedOut)),
            Err(SendRequestError::Connect(ConnectError::Timeout)) => Err(UpstreamError::unsent(
                Kind::Unreachable("connect timeout".into()),
            )),
            // awc's name for a connection that closed after the request was written, before
            // any answer: the upstream may well have acted on it.
            Err(SendRequestError::Connect(ConnectError::Disconnected)) => Err(
                UpstreamError::after_sending(Kind::Broken(ConnectError::Disconnected.to_string())),
            ),
            Err(SendRequestError::Connect(e)) => {
                Err(UpstreamError::unsent(Kind::Unreachable(e.to_string())))
            }
            Err(e) => Err(UpstreamError::after_sending(Kind::Broken(e.to_string()))),
        }
    }
}

enum Attempt {
    Transient(UpstreamAnswer),
    Failed(UpstreamError),
}

fn is_transient(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
    )
}
