//! Hostile callers: one test per finding of the security review (../shared/reviews/security.md),
//! each written to fail on the code as it was and pass after the fix. Grouped by who attacks
//! what: a stranger at the edge, a caller at authentication, a tenant through the proxy, a
//! tenant or stranger through the webhook relay.

mod auth;
mod edge;
mod memory;
mod proxy;
mod webhooks;
