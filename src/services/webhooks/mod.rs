//! The webhook relay: events from the upstream reach the right tenant, signed, retried, never
//! lost.
//!
//! - `registration`: the gateway registers its own ingress URL (a per-session unguessable
//!   token) with the upstream, once per upstream session, for the union of the events its
//!   subscriptions need, and keeps that in step; a reconciler re-registers sessions created
//!   again under a known name.
//! - `subscriptions`: the tenants' webhooks and the redelivery of their deliveries.
//! - ingress (`http::ingress`): refuses unknown tokens from memory (`known_tokens`) before any
//!   body is read, verifies the upstream's `X-Webhook-Hmac` (constant time), refuses events
//!   far from now (replays), then hands the event to `ingest`, the group commit, which stores
//!   it and one outbox row per matching subscription together with the events that arrived
//!   beside it, in one transaction, before the 2xx; an event id seen before is acknowledged
//!   and not stored twice. While the database is away the ingress answers 503 with
//!   `Retry-After`, and the upstream retries.
//! - `delivery` (over `store::webhooks::outbox`): workers on every replica claim due rows with
//!   `FOR UPDATE SKIP LOCKED`, fairly (attempts in flight capped per endpoint and per tenant,
//!   round-robin across tenants), deliver them with awc (redirects off, the address check on
//!   the resolved address), sign them (the tenant's `hmacKey`, or Standard Webhooks with a
//!   `whsec_` secret, `signing`), and schedule retries in the row, so they survive restarts.
//! - `listing`: each tenant's subscriptions as the session answers show them, kept in memory
//!   and dropped by every change (this replica's writers at once, every replica's from a
//!   trigger's announcement).
//! - `health`, `endpoints`: an endpoint failing without a success for
//!   `WAGW_WEBHOOK_DISABLE_AFTER_SECS` is disabled (a `webhook.disabled` event in the tenant's
//!   log, an audit entry); the tenant enables it, rotates its secret, recovers its failures.
//! - `upkeep`: retention and the outbox's bounds, among the application's jobs.
//!
//! Delivery order is not guaranteed: each delivery is retried on its own schedule, so a failing
//! event never holds back the ones behind it. Events carry `id` and `timestamp` for receivers
//! that need to order or deduplicate them.

pub mod delivery;
pub mod endpoints;
pub mod error;
pub mod health;
pub mod ingest;
pub mod known_tokens;
pub mod listing;
pub mod outcomes;
pub mod registration;
pub mod relay;
pub mod retry_after;
pub mod signing;
pub mod ssrf;
pub mod subscriptions;
pub mod upkeep;

pub use delivery::DeliveryWorkers;
pub use error::WebhookError;
pub use relay::{Relay, INGRESS_PREFIX};
