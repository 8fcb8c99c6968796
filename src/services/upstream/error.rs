//! What can go wrong calling the upstream, with where it came from and whether the request
//! reached it (pingora's `ErrorSource` plus its retry flag). `sent` is what quota refunds and
//! Idempotency-Key releases hang on: once the upstream may have acted on a call, nothing
//! gives either back.

use actix_web::http::StatusCode;

/// Who failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The hosted API, or the way to it: unreachable, too slow, refused, an unreadable answer.
    Upstream,
    /// The tenant's side of the exchange. Nothing raises it yet: a tenant that goes away
    /// mid-call drops the handler, and its admission with it (see `gateway::Admitted`).
    Downstream,
    /// The gateway itself (its database, its own bookkeeping around the call).
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamErrorKind {
    /// No connection could be made.
    #[error("the upstream is unreachable: {0}")]
    Unreachable(String),
    /// The exchange broke after the request may have left.
    #[error("the upstream connection failed: {0}")]
    Broken(String),
    #[error("the upstream did not answer in time")]
    TimedOut,
    /// The answer's body could not be read (it broke mid-way, or was larger than we buffer).
    #[error("the upstream's answer could not be read: {0}")]
    Unreadable(String),
    #[error("the upstream answered with malformed JSON: {0}")]
    MalformedJson(#[source] serde_json::Error),
    /// The upstream refused the organisation's key or host (401/403).
    #[error("the upstream refused the gateway's credentials ({0})")]
    CredentialsRefused(StatusCode),
    /// The upstream answered a call of the gateway's own with an error status.
    #[error("the upstream refused to {action} ({status})")]
    Refused {
        action: &'static str,
        status: StatusCode,
    },
    /// Our own work around a call failed (the sessions table, rewriting the answer).
    #[error(transparent)]
    Internal(anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct UpstreamError {
    pub origin: Origin,
    /// Whether the upstream may have received the request.
    pub sent: bool,
    pub kind: UpstreamErrorKind,
}

impl UpstreamError {
    /// A failure before the request left: nothing reached the upstream.
    pub fn unsent(kind: UpstreamErrorKind) -> Self {
        Self {
            origin: Origin::Upstream,
            sent: false,
            kind,
        }
    }

    /// A failure of the upstream's, after the request may have reached it.
    pub fn after_sending(kind: UpstreamErrorKind) -> Self {
        Self {
            origin: Origin::Upstream,
            sent: true,
            kind,
        }
    }

    /// Our own failure around a call; `sent` says whether the upstream may have it already.
    pub fn internal(sent: bool, cause: impl Into<anyhow::Error>) -> Self {
        Self {
            origin: Origin::Internal,
            sent,
            kind: UpstreamErrorKind::Internal(cause.into()),
        }
    }

    /// Our own failure once the upstream has the request: it still counts as sent.
    pub fn internal_after_sending(cause: impl Into<anyhow::Error>) -> Self {
        Self::internal(true, cause)
    }
}
