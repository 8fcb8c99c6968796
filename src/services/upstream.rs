//! The awc client that talks to the hosted API: one per worker (awc is `!Send`), pooled
//! connections, timeouts from configuration, redirects never followed, the organisation's key
//! added here and nowhere else.

use crate::config::UpstreamConfig;
use crate::http::error::ApiError;
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

/// Where an upstream failure came from, which decides what the tenant sees.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamFailure {
    /// No connection could be made: the request was certainly not sent.
    #[error("the upstream is unreachable: {0}")]
    Unreachable(String),
    /// The exchange broke after the request may have left.
    #[error("the upstream connection failed: {0}")]
    Broken(String),
    #[error("the upstream did not answer in time")]
    TimedOut,
}

impl UpstreamFailure {
    /// Whether the request certainly never reached the upstream (so nothing was sent).
    pub fn never_sent(&self) -> bool {
        matches!(self, UpstreamFailure::Unreachable(_))
    }
}

impl From<UpstreamFailure> for ApiError {
    fn from(f: UpstreamFailure) -> Self {
        match f {
            UpstreamFailure::Unreachable(_) | UpstreamFailure::Broken(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "the upstream WhatsApp API is unreachable",
            )
            .with_cause(anyhow::anyhow!(f)),
            UpstreamFailure::TimedOut => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "the upstream WhatsApp API did not answer in time",
            ),
        }
    }
}

/// One call to make.
pub struct UpstreamCall<'a> {
    pub method: Method,
    /// `/v1/...` with the query string, already rewritten to upstream names.
    pub path_and_query: String,
    pub body: Option<Bytes>,
    /// The tenant's request headers; only `FORWARDED_REQUEST_HEADERS` are taken.
    pub headers: &'a HeaderMap,
    pub request_id: Option<&'a str>,
    /// The route template, for metrics.
    pub route: &'static str,
    /// Safe to repeat (GET): retried on connect errors, 502, 503 and 429.
    pub retryable: bool,
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

    /// Reads the whole body (JSON answers, to rewrite them).
    pub async fn read_body(&mut self) -> Result<Bytes, ApiError> {
        self.response
            .body()
            .limit(MAX_JSON_ANSWER)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "the upstream's answer could not be read",
                )
                .with_cause(anyhow::anyhow!("{e}"))
            })
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
            .limit(256)
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
        }
    }

    /// Sends the call; GETs are retried with exponential backoff and jitter on connect errors,
    /// 502, 503 and 429, within the configured attempts and time budget. Other calls are sent
    /// once: a send is never repeated blindly.
    pub async fn send(&self, call: &UpstreamCall<'_>) -> Result<UpstreamAnswer, UpstreamFailure> {
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
                !matches!(a, Attempt::Failed(UpstreamFailure::TimedOut))
                    && started.elapsed() < budget
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

    async fn send_once(&self, call: &UpstreamCall<'_>) -> Result<UpstreamAnswer, UpstreamFailure> {
        let url = format!("{}{}", self.base, call.path_and_query);
        let mut request = self
            .http
            .request(call.method.clone(), &url)
            .insert_header((RAPIDAPI_KEY, self.key.clone()))
            .insert_header((RAPIDAPI_HOST, self.host.clone()));
        for name in FORWARDED_REQUEST_HEADERS {
            if let Some(value) = call.headers.get(name) {
                request = request.insert_header((name.clone(), value.clone()));
            }
        }
        if let Some(id) = call.request_id {
            request = request.insert_header(("x-request-id", id));
        }
        let started = Instant::now();
        let sent = match &call.body {
            Some(body) => request.send_body(body.clone()).await,
            None => request.send().await,
        };
        let outcome = match &sent {
            Ok(response) => response.status().as_str().to_owned(),
            Err(SendRequestError::Timeout)
            | Err(SendRequestError::Connect(ConnectError::Timeout)) => "timeout".into(),
            Err(_) => "error".into(),
        };
        self.metrics
            .observe_upstream(call.route, &outcome, started.elapsed());
        match sent {
            Ok(response) => Ok(UpstreamAnswer { response }),
            Err(SendRequestError::Timeout) => Err(UpstreamFailure::TimedOut),
            Err(SendRequestError::Connect(ConnectError::Timeout)) => {
                Err(UpstreamFailure::Unreachable("connect timeout".into()))
            }
            Err(SendRequestError::Connect(e)) => Err(UpstreamFailure::Unreachable(e.to_string())),
            Err(e) => Err(UpstreamFailure::Broken(e.to_string())),
        }
    }
}

enum Attempt {
    Transient(UpstreamAnswer),
    Failed(UpstreamFailure),
}

fn is_transient(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
    )
}
