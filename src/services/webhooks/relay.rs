//! What the relay's handlers and workers share.

/// Where the upstream posts events: this prefix and the session's token.
pub const INGRESS_PREFIX: &str = "/webhooks/ingress/";

/// What the relay's handlers and workers share, once per replica.
pub struct Relay {
    /// `WAGW_PUBLIC_URL` (or `http://{listen}` with the real port), without a trailing `/`.
    pub public_base: String,
    pub allow_private: bool,
    /// Wakes this replica's delivery workers when ingress stored deliveries.
    pub wake: std::sync::Arc<tokio::sync::Notify>,
    /// The ingress tokens that exist, so unknown ones are refused without a database query.
    pub tokens: crate::services::webhooks::known_tokens::KnownTokens,
    /// The group commit verified events are stored through.
    pub ingest: crate::services::webhooks::ingest::Ingest,
    /// The tenants' subscription lists; whoever writes a subscription drops its tenant's.
    pub subscriptions: crate::services::webhooks::listing::SubscriptionLists,
}

impl Relay {
    /// The URL the upstream posts a session's events to.
    pub fn ingress_url(&self, token: &str) -> String {
        format!("{}{INGRESS_PREFIX}{token}", self.public_base)
    }
}
