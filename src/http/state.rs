//! The application state: every service a handler may use, in one value.
//!
//! The services are built once per replica and shared (`Arc`); each worker thread gets its
//! own `AppState` holding them and its own upstream client, because awc clients cannot cross
//! threads. Handlers take `web::Data<AppState>` and nothing else from the app data.

use crate::config::Config;
use crate::db::Db;
use crate::http::ops::Readiness;
use crate::http::tenant::ProxyState;
use crate::metrics::Metrics;
use crate::services::auth::Auth;
use crate::services::quota::Quotas;
use crate::services::sessions::SessionStore;
use crate::services::upstream::UpstreamClient;
use crate::services::webhooks::Relay;
use std::sync::Arc;

pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub auth: Arc<Auth>,
    pub quotas: Arc<Quotas>,
    pub sessions: SessionStore,
    pub proxy: Arc<ProxyState>,
    pub relay: Arc<Relay>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    /// This worker's client for the hosted API.
    pub upstream: UpstreamClient,
}
