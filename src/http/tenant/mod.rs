//! What a tenant calls with its API key: the forwarded rows, its webhooks, `/v1/me`.

pub mod me;
pub mod ownership;
pub mod proxy;
pub mod rewrite;
pub mod session_config;
pub mod webhooks;

pub use proxy::ProxyState;
