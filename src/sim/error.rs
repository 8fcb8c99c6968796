//! The simulator's refusals: the seed's error shape for most, and the engine's own bodies
//! where it answers something else (ENGINE.md §1, error body with an object message).

use crate::http::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::Value;

/// What a simulator handler answers: usually a response, or the refusal the API would give.
pub type SimResult<T = HttpResponse> = Result<T, SimError>;

#[derive(Debug)]
pub enum SimError {
    /// `{statusCode, error, message}`, as the seed documents every error.
    Shaped(ApiError),
    /// A body the engine passes through verbatim (NestJS `HttpException` with an object):
    /// the 422 `{error, session, status, expected}`, presence's 400 `{detail}`.
    Verbatim(StatusCode, Value),
}

impl SimError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::Shaped(ApiError::bad_request(message))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::Shaped(ApiError::not_found(message))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Shaped(ApiError::conflict(message))
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::Shaped(ApiError::unprocessable(message))
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Shaped(ApiError::internal(cause))
    }
}

impl From<ApiError> for SimError {
    fn from(e: ApiError) -> Self {
        Self::Shaped(e)
    }
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shaped(e) => write!(f, "{}", e.message()),
            Self::Verbatim(status, body) => write!(f, "{status}: {body}"),
        }
    }
}

impl ResponseError for SimError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Shaped(e) => e.status(),
            Self::Verbatim(status, _) => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Shaped(e) => e.error_response(),
            Self::Verbatim(status, body) => HttpResponse::build(*status).json(body),
        }
    }
}
