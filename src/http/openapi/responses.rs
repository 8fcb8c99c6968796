//! The error answers, once each, as reusable responses in the error shape (`ErrorBody`).
//! Operations reference them by status, so generated clients get one typed error.

use crate::http::error::ApiError;
use actix_web::http::StatusCode;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType};
use utoipa::openapi::{ContentBuilder, Ref, Response, ResponseBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStatus {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unprocessable,
    TooManyRequests,
    BadGateway,
    ServiceUnavailable,
    GatewayTimeout,
}

impl ErrorStatus {
    pub const ALL: [ErrorStatus; 12] = [
        ErrorStatus::BadRequest,
        ErrorStatus::Unauthorized,
        ErrorStatus::Forbidden,
        ErrorStatus::NotFound,
        ErrorStatus::Conflict,
        ErrorStatus::PayloadTooLarge,
        ErrorStatus::UnsupportedMediaType,
        ErrorStatus::Unprocessable,
        ErrorStatus::TooManyRequests,
        ErrorStatus::BadGateway,
        ErrorStatus::ServiceUnavailable,
        ErrorStatus::GatewayTimeout,
    ];

    fn status(self) -> StatusCode {
        match self {
            ErrorStatus::BadRequest => StatusCode::BAD_REQUEST,
            ErrorStatus::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorStatus::Forbidden => StatusCode::FORBIDDEN,
            ErrorStatus::NotFound => StatusCode::NOT_FOUND,
            ErrorStatus::Conflict => StatusCode::CONFLICT,
            ErrorStatus::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorStatus::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorStatus::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorStatus::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorStatus::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorStatus::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorStatus::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The status code as the document's `responses` keys it.
    pub fn code(self) -> String {
        self.status().as_u16().to_string()
    }

    /// The name of the reusable response (`#/components/responses/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorStatus::BadRequest => "BadRequest",
            ErrorStatus::Unauthorized => "Unauthorized",
            ErrorStatus::Forbidden => "Forbidden",
            ErrorStatus::NotFound => "NotFound",
            ErrorStatus::Conflict => "Conflict",
            ErrorStatus::PayloadTooLarge => "PayloadTooLarge",
            ErrorStatus::UnsupportedMediaType => "UnsupportedMediaType",
            ErrorStatus::Unprocessable => "UnprocessableEntity",
            ErrorStatus::TooManyRequests => "TooManyRequests",
            ErrorStatus::BadGateway => "BadGateway",
            ErrorStatus::ServiceUnavailable => "ServiceUnavailable",
            ErrorStatus::GatewayTimeout => "GatewayTimeout",
        }
    }

    /// When the gateway answers it, and an example message.
    fn meaning(self) -> (&'static str, &'static str) {
        match self {
            ErrorStatus::BadRequest => (
                "The request is invalid: a missing or mistyped field (named in the message), a bad query parameter or header, malformed JSON",
                "chatId is required",
            ),
            ErrorStatus::Unauthorized => (
                "Missing, malformed, unknown, expired or revoked credentials",
                "invalid API key",
            ),
            ErrorStatus::Forbidden => (
                "The credentials are valid but may not do this: a missing scope (named in the message), a suspended tenant, a session the key is not limited to",
                "this API key lacks the `messages:send` scope",
            ),
            ErrorStatus::NotFound => (
                "The session or resource does not exist, or is not yours",
                "session \"default\" not found",
            ),
            ErrorStatus::Conflict => (
                "The name is taken, or a request with the same Idempotency-Key is still in progress",
                "session `default` already exists",
            ),
            ErrorStatus::PayloadTooLarge => (
                "The request body is larger than the limit",
                "request body is larger than the limit",
            ),
            ErrorStatus::UnsupportedMediaType => (
                "The body is not `application/json`",
                "Content-Type must be application/json",
            ),
            ErrorStatus::Unprocessable => (
                "The session is not in the status the call needs (`WORKING`; `SCAN_QR_CODE` for the QR or pairing code): the upstream waits up to 5 s, then answers the object `{error, session, status, expected}`, which reaches you in this shape with a message built from those fields. Also: the upstream cannot do this with its engine, a session name it refuses, or the Idempotency-Key was used with a different body",
                "Session status is not as expected. Try again later or restart the session (session \"default\", status STARTING, expected WORKING)",
            ),
            ErrorStatus::TooManyRequests => (
                "A limit was reached: the tenant's per-second rate or monthly quota, or the organisation's upstream budget; wait `Retry-After` seconds",
                "monthly quota of 1000 requests exhausted; it resets at the start of next month (UTC)",
            ),
            ErrorStatus::BadGateway => (
                "The upstream WhatsApp API is unreachable or answered something unreadable",
                "the upstream WhatsApp API is unreachable",
            ),
            ErrorStatus::ServiceUnavailable => (
                "The gateway's database is unavailable; retry shortly",
                "quota cannot be checked right now (the database is unreachable); retry shortly",
            ),
            ErrorStatus::GatewayTimeout => (
                "The upstream WhatsApp API did not answer in time",
                "the upstream WhatsApp API did not answer in time",
            ),
        }
    }

    pub fn response(self) -> Response {
        let (description, message) = self.meaning();
        // The error shape as `ApiError` builds it, so the example cannot drift from it.
        let example = ApiError::new(self.status(), message).body();
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Ref::from_schema_name("ErrorBody"))
                .example(Some(
                    serde_json::to_value(example).expect("the error shape serializes"),
                ))
                .build(),
        );
        if self == ErrorStatus::TooManyRequests {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(SchemaType::Integer))
                    .description(Some("Whole seconds to wait, at least 1"))
                    .build(),
            );
        }
        response.build()
    }
}
