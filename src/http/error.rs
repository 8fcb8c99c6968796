//! The one error type every gateway handler answers with.
//!
//! Whatever goes wrong, the client sees the hosted API's error shape,
//! `{"statusCode": 400, "error": "Bad Request", "message": "chatId is required"}`,
//! so code written against the hosted API handles our errors unchanged. Internal causes are
//! logged with their whole `source()` chain and never reach the client.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a 503 for the database being away tells the caller to wait: a restart or a failover
/// usually takes a few seconds.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 2;

/// The wire form of every error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The HTTP status code, repeated for clients that only see the body.
    #[schema(example = 400)]
    pub status_code: u16,
    /// The status code's reason phrase.
    #[schema(example = "Bad Request")]
    pub error: String,
    /// What went wrong, for a person.
    #[schema(example = "chatId is required")]
    pub message: String,
}

impl ErrorBody {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status_code: status.as_u16(),
            error: status.canonical_reason().unwrap_or("Error").to_owned(),
            message: message.into(),
        }
    }
}

/// An error on its way to becoming a response.
///
/// `internal` carries the cause for the log; the client only ever sees `message`.
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
    internal: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            internal: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 429 with the `Retry-After` every refusal for a limit must carry (whole seconds, >= 1).
    pub fn too_many_requests(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, message).with_retry_after(retry_after_secs)
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 503 for the database being away (a restart, a failover, a saturated pool), with the
    /// `Retry-After` a caller such as the upstream's webhook delivery can wait on.
    pub fn database_unavailable() -> Self {
        Self::service_unavailable("the database is unavailable, retry shortly")
            .with_retry_after(DATABASE_RETRY_AFTER_SECS)
    }

    /// A failure of ours: logged in full, answered with a generic 500.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal server error".to_owned(),
            retry_after: None,
            internal: Some(cause.into()),
        }
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// Attach a cause for the log without changing what the client sees.
    pub fn with_cause(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.internal = Some(cause.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.status, self.message.clone())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        Self::from(crate::store::StoreError::from(err))
    }
}

/// A database error shared by every caller of a coalesced look-up.
impl From<std::sync::Arc<sqlx::Error>> for ApiError {
    fn from(err: std::sync::Arc<sqlx::Error>) -> Self {
        match std::sync::Arc::try_unwrap(err) {
            Ok(err) => Self::from(err),
            // Shared with other waiters: keep the classification, log the shared cause.
            Err(shared) => match &*shared {
                e if crate::store::error::is_unavailable(e) => {
                    Self::database_unavailable().with_cause(shared)
                }
                sqlx::Error::Database(e) if crate::store::error::is_untranslatable(&**e) => {
                    Self::bad_request("text values may not contain NUL (\\u0000) characters")
                        .with_cause(shared)
                }
                _ => Self::internal(shared),
            },
        }
    }
}

/// The one place store errors become answers.
impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError as E;
        match err {
            E::NotFound(what) => Self::not_found(format!("{what} not found")),
            E::Conflict { message, .. } => Self::conflict(message),
            E::Untranslatable(_) => Self::bad_request(err.to_string()).with_cause(err),
            E::Unavailable(_) => Self::database_unavailable().with_cause(err),
            E::Other(_) => Self::internal(err),
        }
    }
}

/// The relay's errors: the tenant's mistakes as 4xx, the upstream's failures as 502/504.
impl From<crate::services::webhooks::WebhookError> for ApiError {
    fn from(err: crate::services::webhooks::WebhookError) -> Self {
        use crate::services::webhooks::WebhookError as E;
        match err {
            E::Store(e) => e.into(),
            E::TooMany | E::StillPending => Self::conflict(err.to_string()),
            E::TenantGone => Self::unauthorized(crate::services::auth::INVALID_KEY),
            E::NoSuchWebhook { .. } | E::NoSuchDelivery(_) => Self::not_found(err.to_string()),
            E::Admission(refusal) => refusal.into(),
            E::Unreachable(failure) => failure.into(),
            E::Refused { status, message } => Self::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                message,
            ),
            E::UpstreamFailed { .. } => Self::new(
                StatusCode::BAD_GATEWAY,
                "the upstream could not register the webhook; retry shortly",
            )
            .with_cause(err),
        }
    }
}

/// The group commit's refusals: all of them ask the upstream to retry.
impl From<crate::services::webhooks::ingest::IngestError> for ApiError {
    fn from(err: crate::services::webhooks::ingest::IngestError) -> Self {
        use crate::services::webhooks::ingest::IngestError as E;
        match err {
            E::Unavailable => Self::database_unavailable(),
            E::Saturated => {
                Self::service_unavailable("too many events are waiting to be stored; retry shortly")
                    .with_retry_after(1)
            }
            E::Failed => Self::internal(err),
        }
    }
}

/// The one place domain rule violations become answers: 400 naming the problem.
impl From<crate::domain::Invalid> for ApiError {
    fn from(err: crate::domain::Invalid) -> Self {
        Self::bad_request(err.message)
    }
}

/// The one place upstream failures become answers: 504 when it was too slow, 502 for every
/// other failure of the upstream's (the cause logged, never shown), 500 for our own. A call the
/// upstream may have acted on says so, so that nobody resends it blindly.
impl From<crate::services::upstream::UpstreamError> for ApiError {
    fn from(err: crate::services::upstream::UpstreamError) -> Self {
        use crate::services::upstream::UpstreamErrorKind as K;
        let bad_gateway = |message: String| Self::new(StatusCode::BAD_GATEWAY, message);
        let answer = match &err.kind {
            K::TimedOut => {
                return Self::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the upstream WhatsApp API did not answer in time",
                )
            }
            K::Unreachable(_) | K::Broken(_) => {
                bad_gateway("the upstream WhatsApp API is unreachable".to_owned())
            }
            K::CredentialsRefused(_) => {
                bad_gateway("the upstream refused the gateway's credentials".to_owned())
            }
            K::Refused { action, status } => {
                bad_gateway(format!("the upstream refused to {action} ({status})"))
            }
            K::Internal(_) if !err.sent => return Self::internal(err),
            K::Unreadable(_) | K::MalformedJson(_) | K::Internal(_) => bad_gateway(
                "the upstream received the call but its answer could not be read; do not resend blindly"
                    .to_owned(),
            ),
        };
        answer.with_cause(err)
    }
}

/// A gateway call the quotas refused answers with the quota's refusal.
impl From<crate::services::upstream::GatewayError> for ApiError {
    fn from(err: crate::services::upstream::GatewayError) -> Self {
        match err {
            crate::services::upstream::GatewayError::Refused(refusal) => refusal.into(),
            crate::services::upstream::GatewayError::Upstream(e) => e.into(),
        }
    }
}

/// A session limit is a 429 without a time bound: a slot frees when a session is deleted.
impl From<crate::services::sessions::SessionError> for ApiError {
    fn from(err: crate::services::sessions::SessionError) -> Self {
        use crate::services::sessions::SessionError as E;
        match err {
            E::TenantFull(_) | E::OrganisationFull(_) => {
                Self::too_many_requests(err.to_string(), 60)
            }
            E::CallerGone => Self::unauthorized(crate::services::auth::INVALID_KEY),
            E::Store(crate::store::StoreError::Conflict {
                constraint: crate::store::sessions::TENANT_MISSING,
                message,
            }) => Self::not_found(message),
            E::Store(e) => e.into(),
            E::Lookup(e) => e.into(),
        }
    }
}

impl From<crate::services::idempotency::IdempotencyError> for ApiError {
    fn from(err: crate::services::idempotency::IdempotencyError) -> Self {
        use crate::services::idempotency::IdempotencyError as E;
        match err {
            E::OtherRequest => Self::unprocessable(err.to_string()),
            E::InProgress => Self::conflict(err.to_string()),
            E::Store(e) => e.into(),
        }
    }
}

/// Tenancy's errors: rule violations are 422 there (the admin API's contract), and a change
/// that does not fit the current state is 409.
impl From<crate::services::tenancy::TenancyError> for ApiError {
    fn from(err: crate::services::tenancy::TenancyError) -> Self {
        use crate::services::tenancy::TenancyError as E;
        match err {
            E::Invalid(invalid) => Self::unprocessable(invalid.message),
            E::NoTenant(_) | E::NoKey(_) | E::NoAdmin(_) => Self::not_found(err.to_string()),
            E::Refused(message) => Self::conflict(message),
            E::Store(store) => store.into(),
            E::Internal(cause) => Self::internal(cause),
        }
    }
}

/// The one place quota refusals become answers: 429 naming the limit with `Retry-After` at
/// its real boundary, 503 when the limits cannot be checked.
impl From<crate::services::quota::QuotaError> for ApiError {
    fn from(err: crate::services::quota::QuotaError) -> Self {
        use crate::services::quota::QuotaError as E;
        match err {
            E::Refused(refusal) => {
                Self::too_many_requests(refusal_message(refusal.limit), refusal.retry_after)
            }
            E::Unavailable(cause) => Self::service_unavailable(
                "quota cannot be checked right now (the database is unreachable); retry shortly",
            )
            .with_cause(cause),
            E::Invalid(invalid) => invalid.into(),
            E::Store(store) => store.into(),
        }
    }
}

fn refusal_message(limit: crate::services::quota::Limit) -> String {
    use crate::services::quota::Limit;
    match limit {
        Limit::TenantMonthly { requests } => format!(
            "monthly quota of {requests} requests exhausted; it resets at the start of next month (UTC)"
        ),
        Limit::TenantRate { per_second } => {
            format!("rate limit of {per_second} requests per second exceeded")
        }
        Limit::UpstreamMonthly { .. } => {
            "the organisation's monthly upstream budget is exhausted".to_owned()
        }
        Limit::UpstreamRate { per_second } => format!(
            "the organisation's upstream budget of {per_second} requests per second is fully used; retry shortly"
        ),
    }
}

/// The one place pacing refusals become answers: 429 naming the policy's limit, with
/// `Retry-After` when a retry would go at once; a policy that breaks a rule is 400.
impl From<crate::services::pacing::PacingError> for ApiError {
    fn from(err: crate::services::pacing::PacingError) -> Self {
        use crate::services::pacing::PacingError as E;
        match err {
            E::Refused(refusal) => {
                let retry_after = refusal.retry_after();
                Self::too_many_requests(pacing_message(&refusal), retry_after)
            }
            E::Invalid(invalid) => invalid.into(),
            E::Store(store) => store.into(),
            E::Lookup(shared) => match &*shared {
                crate::store::StoreError::Unavailable(_) => {
                    Self::service_unavailable("the database is unavailable, retry shortly")
                }
                _ => Self::internal(anyhow::anyhow!("reading a pacing policy: {shared}")),
            },
        }
    }
}

fn pacing_message(r: &crate::services::pacing::Refusal) -> String {
    use crate::domain::pacing::Hold;
    let (session, chat, p) = (&r.session, &r.chat, &r.policy);
    let why = match r.hold {
        Hold::NewChats if p.max_new_chats_per_day == Some(0) => format!(
            "session `{session}` may send to no new chat (maxNewChatsPerDay 0: reply only), and `{chat}` was never sent to nor heard from"
        ),
        Hold::NewChats => format!(
            "session `{session}` sent to {} new chats in the last 24 hours (maxNewChatsPerDay), and `{chat}` was never sent to nor heard from",
            p.max_new_chats_per_day.unwrap_or_default()
        ),
        Hold::PerMinute => format!(
            "session `{session}` sent {} messages in the last minute (maxPerMinute)",
            p.max_per_minute.unwrap_or_default()
        ),
        Hold::PerHour => format!(
            "session `{session}` sent {} messages in the last hour (maxPerHour)",
            p.max_per_hour.unwrap_or_default()
        ),
        Hold::Interval | Hold::None => format!(
            "session `{session}` sends one message at a time, at least {} ms apart (minIntervalMs {}, jitterMs {}), and the sends ahead of this one fill the wait",
            p.min_interval_ms.unwrap_or_default(),
            p.min_interval_ms.unwrap_or_default(),
            p.jitter_ms.unwrap_or_default()
        ),
    };
    let wait = match r.wait {
        Some(wait) => format!("it would wait {} ms", wait.as_millis()),
        None => "it could never go".to_owned(),
    };
    format!(
        "pacing: {why}; {wait}, longer than the gateway waits ({} ms, WAGW_PACING_MAX_WAIT_MS). Nothing was sent and no quota spent; retry after Retry-After seconds",
        r.max_wait.as_millis()
    )
}

/// The one place authentication failures become answers. Every key refusal is the same 401.
impl From<crate::services::auth::AuthError> for ApiError {
    fn from(err: crate::services::auth::AuthError) -> Self {
        use crate::services::auth::{AuthError as E, Throttle};
        match err {
            E::InvalidKey => Self::unauthorized(crate::services::auth::INVALID_KEY),
            E::BadLogin | E::InvalidAdminToken => Self::unauthorized(err.to_string()),
            E::Suspended => Self::forbidden(err.to_string()),
            E::Throttled {
                throttle,
                retry_after,
            } => Self::too_many_requests(
                match throttle {
                    Throttle::KeyFailures => {
                        "too many failed attempts with this API key; retry later"
                    }
                    Throttle::KeyRate => "too many requests with this API key; slow down",
                    Throttle::LoginFailures => "too many failed login attempts; retry later",
                },
                retry_after,
            ),
            E::Busy => {
                Self::service_unavailable("too many credential checks are waiting; retry shortly")
                    .with_retry_after(1)
            }
            E::Store(store) => store.into(),
            E::Internal(cause) => Self::internal(cause),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(err)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.message)
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        if let Some(cause) = &self.internal {
            // `{:#}` walks the whole source() chain, so the log shows the root cause.
            write!(f, "\n  caused by: {cause:#}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.internal {
            if self.status.is_server_error() {
                tracing::error!(status = self.status.as_u16(), "request failed: {cause:#}");
            } else {
                tracing::warn!(status = self.status.as_u16(), "request refused: {cause:#}");
            }
        }
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        response.json(self.body())
    }
}

/// Turns actix's JSON extractor failures into the error shape with a message that names the
/// problem: malformed JSON is 400, a wrong content type 415, a body too large 413.
pub fn json_error(err: actix_web::error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::OverflowKnownLength { length, limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body of {length} bytes is larger than the limit of {limit} bytes"),
        ),
        E::Overflow { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {limit} bytes"),
        ),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ),
        E::Deserialize(e) if e.is_data() => ApiError::bad_request(format!("invalid body: {e}")),
        E::Deserialize(e) => ApiError::bad_request(format!("malformed JSON: {e}")),
        E::Payload(e) => payload_error(e),
        _ => ApiError::bad_request("could not read the request body"),
    };
    api.into()
}

/// A body that could not be read: too slow (408), too large (413), or broken (400).
pub fn payload_error(err: &actix_web::error::PayloadError) -> ApiError {
    use actix_web::error::PayloadError;
    match err {
        PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        ),
        PayloadError::Overflow => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is larger than this route's limit",
        ),
        _ => ApiError::bad_request("the request body could not be read"),
    }
}

/// Most bytes of a client's path or method that a message or a log line repeats: enough to
/// recognise the request, too few to amplify a 100 KiB one.
pub const ECHO_LIMIT: usize = 256;

/// `text` cut to at most [`ECHO_LIMIT`] bytes (on a character boundary), marked when cut.
pub fn truncated(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= ECHO_LIMIT {
        return text.into();
    }
    let mut end = ECHO_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len()).into()
}

/// Query-string extractor failures: 400 naming the parameter problem.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(format!("invalid query string: {err}")).into()
}

/// Path extractor failures: 404, because a path that does not parse names nothing we serve.
pub fn path_error(err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::not_found(format!("not found: {err}")).into()
}

/// The last line of defence: any error response that is not already JSON (actix's own 404 for
/// an unknown path, 405 for an undeclared method, 413 from a payload limit...) is rewritten
/// into the error shape, so nothing ever leaks as plain text.
pub fn shape_plain_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let message = match status {
        StatusCode::NOT_FOUND => format!(
            "no route for {} {}",
            truncated(res.request().method().as_str()),
            truncated(res.request().path())
        ),
        StatusCode::METHOD_NOT_ALLOWED => format!(
            "method {} is not allowed on {}",
            truncated(res.request().method().as_str()),
            truncated(res.request().path())
        ),
        StatusCode::PAYLOAD_TOO_LARGE => "request body is larger than the limit".to_owned(),
        s if s.is_server_error() => "internal server error".to_owned(),
        s => s.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let body = serde_json::to_vec(&ErrorBody::new(status, message)).unwrap_or_default();
    let (req, mut res) = res.into_parts();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut().remove(header::CONTENT_LENGTH);
    let res = res.set_body(BoxBody::new(body));
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, res).map_into_right_body(),
    ))
}
