//! What a tenant calls with its API key: the forwarded rows, its webhooks, its sessions'
//! pacing, its event log, `/v1/me`.

pub mod events;
pub mod me;
pub mod ownership;
pub mod pacing;
pub mod proxy;
pub mod rewrite;
pub mod session_config;
pub mod webhook_endpoints;
pub mod webhooks;

pub use proxy::ProxyState;
