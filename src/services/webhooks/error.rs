//! What can go wrong in the relay's own work; the HTTP layer decides how each is answered.

use crate::domain::webhooks::MAX_PER_SESSION;
use crate::services::upstream::UpstreamError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a session may have at most {MAX_PER_SESSION} webhooks; remove one first")]
    TooMany,
    /// The caller's tenant was deleted while its key was still accepted.
    #[error("the tenant no longer exists")]
    TenantGone,
    #[error("no webhook {url} on session \"{session}\"")]
    NoSuchWebhook { url: String, session: String },
    #[error("delivery {0} not found")]
    NoSuchDelivery(String),
    #[error("webhook {0} not found")]
    NoSuchWebhookId(String),
    #[error("only webhooks with \"signing\": \"standard\" have a secret to rotate; change an hmacKey by registering the webhook again")]
    NotStandard,
    /// The session's deliveries were recovered less than a minute ago; try after this.
    #[error("the session's deliveries were recovered less than a minute ago")]
    RecoveredRecently(std::time::Duration),
    #[error("the delivery is still pending; it will be attempted on its own")]
    StillPending,
    /// The tenant's quotas or the organisation's budget refused the registration call: the
    /// quota service's own refusal, answered as it is.
    #[error(transparent)]
    Admission(#[from] crate::services::quota::QuotaError),
    #[error(transparent)]
    Unreachable(#[from] UpstreamError),
    /// The upstream refused the registration as the caller's mistake (a 4xx); `message` is
    /// its own.
    #[error("{message}")]
    Refused { status: u16, message: String },
    /// The upstream failed the registration (a 5xx or another unexpected answer).
    #[error("the upstream answered {status} to the webhook registration: {message}")]
    UpstreamFailed { status: u16, message: String },
}
