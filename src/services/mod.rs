//! The gateway's work behind the HTTP layer: authentication, quotas, sessions, the upstream
//! client, idempotency, the webhook relay and the event log's readers.

pub mod auth;
pub mod cache;
pub mod events;
pub mod idempotency;
pub mod jobs;
pub mod pacing;
pub mod quota;
pub mod sessions;
pub mod tenancy;
pub mod upstream;
pub mod webhooks;
