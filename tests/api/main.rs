//! Every integration test builds into this one binary; it only lists the modules.

mod helpers;

mod admin;
mod console;
mod contract;
mod embedded_db;
mod events;
mod forwarding;
mod foundation;
mod hostile;
mod idempotency;
mod openapi;
mod pacing;
mod quota_limits;
mod quotas;
mod relay_durability;
mod sim;
mod sim_control;
mod subscription_lists;
mod tenant_auth;
mod test_keys;
mod upstream_failures;
mod upstream_pool;
mod validation;
mod webhook_endpoints;
mod webhooks;
