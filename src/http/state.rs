//! The application state: every service a handler may use, in one value.
//!
//! The services are built once per replica and shared (`Arc`); each worker thread gets its
//! own `AppState` holding them and its own upstream client, because awc clients cannot cross
//! threads. Handlers take `web::Data<AppState>` and nothing else from the app data.

use crate::config::Config;
use crate::db::{ChangeFeed, Db, Readiness};
use crate::http::tenant::ProxyState;
use crate::metrics::Metrics;
use crate::services::auth::Auth;
use crate::services::events::Hub;
use crate::services::pacing::Pacing;
use crate::services::quota::{Clock, Quotas};
use crate::services::sessions::SessionStore;
use crate::services::upstream::{TestUpstream, UpstreamClient, Upstreams};
use crate::services::webhooks::ingest::Ingest;
use crate::services::webhooks::listing::SubscriptionLists;
use crate::services::webhooks::Relay;
use secrecy::SecretString;
use std::sync::Arc;

pub struct AppState {
    /// The services every worker shares; handlers reach them through `Deref`.
    pub shared: SharedState,
    /// This worker's client for the hosted API.
    pub upstream: UpstreamClient,
    /// This worker's client for the replica's simulator, which serves test keys.
    pub test_upstream: UpstreamClient,
}

impl AppState {
    /// Both upstreams; `.of(mode)` is where a call of that mode goes.
    pub fn upstreams(&self) -> Upstreams<'_> {
        Upstreams {
            live: &self.upstream,
            test: &self.test_upstream,
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.shared
    }
}

/// What every worker's `AppState` shares: built once per replica, before the server.
#[derive(Clone)]
pub struct SharedState {
    pub config: Arc<Config>,
    pub db: Db,
    pub auth: Arc<Auth>,
    pub quotas: Arc<Quotas>,
    pub sessions: SessionStore,
    pub proxy: Arc<ProxyState>,
    pub relay: Arc<Relay>,
    pub pacing: Arc<Pacing>,
    /// The event log's broadcast to this replica's streams, and the poller that feeds it.
    pub events: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    /// The replica's one LISTEN connection; the caches follow it.
    pub feed: Arc<ChangeFeed>,
    /// The webhook outbox's notifications, for the delivery workers (subscribed before the
    /// feed starts listening).
    pub outbox_changed: Arc<tokio::sync::Notify>,
    /// The key the upstream clients present (the sandbox's when no key is configured).
    pub upstream_key: SecretString,
    /// The replica's in-process simulator, where test keys' calls go.
    pub test_upstream: Arc<TestUpstream>,
}

impl AppState {
    /// Builds every shared service over `db`; `public_base` is where the upstream posts
    /// events, `sandbox_key` the simulator's key when it is the upstream, `test_upstream` the
    /// simulator that serves test keys.
    pub async fn build(
        config: Config,
        db: Db,
        clock: Arc<dyn Clock>,
        public_base: String,
        sandbox_key: Option<SecretString>,
        test_upstream: TestUpstream,
    ) -> anyhow::Result<SharedState> {
        let quotas = Arc::new(Quotas::new(db.clone(), &config.quota, clock).await?);
        // Deleting a session deletes its subscriptions: the session store drops their list.
        let subscriptions = SubscriptionLists::new(db.clone());
        let sessions = SessionStore::new(db.clone(), subscriptions.clone());
        let metrics = Arc::new(Metrics::new());
        let pacing = Arc::new(Pacing::new(
            db.clone(),
            &config.pacing,
            config.upstream.request_timeout,
            quotas.clone(),
            metrics.clone(),
        ));
        let proxy = Arc::new(ProxyState::new(
            config.upstream.check_exists_ttl,
            // A twin of a paced send may wait for the first one's turn as well.
            config.upstream.request_timeout + config.pacing.max_wait,
        ));
        let auth = Arc::new(Auth::new(db.clone(), &config.admin).await?);
        let feed = ChangeFeed::new(db.clone());
        auth.follow(&feed);
        sessions.follow(&feed);
        pacing.follow(&feed);
        subscriptions.follow(&feed);
        let outbox_changed = feed.subscribe(crate::store::webhooks::outbox::NOTIFY_CHANNEL);
        let relay = Arc::new(Relay {
            public_base,
            allow_private: config.webhooks.allow_private,
            wake: Arc::new(tokio::sync::Notify::new()),
            tokens: Default::default(),
            ingest: Ingest::start(db.clone(), metrics.clone(), config.webhooks.ingress_batch),
            subscriptions,
        });
        relay.tokens.follow(
            &feed,
            &[
                crate::services::sessions::CHANNEL,
                crate::services::auth::CHANNEL,
            ],
        );
        let events = Hub::start(&db).await?;
        let upstream_key = config
            .upstream
            .key
            .clone()
            .or(sandbox_key)
            .unwrap_or_else(|| SecretString::from("sandbox"));
        Ok(SharedState {
            config: Arc::new(config),
            db,
            auth,
            quotas,
            sessions,
            proxy,
            relay,
            pacing,
            events,
            metrics,
            readiness: Arc::new(Readiness::new()),
            feed,
            outbox_changed,
            upstream_key,
            test_upstream: Arc::new(test_upstream),
        })
    }
}

impl SharedState {
    /// A worker's state: the shared services and a client of its own.
    pub fn for_worker(&self) -> AppState {
        AppState {
            shared: self.clone(),
            upstream: self.upstream_client(),
            test_upstream: self
                .test_upstream
                .client(actix_web::web::Data::from(self.metrics.clone())),
        }
    }

    /// A client for the hosted API, for the thread that calls this.
    pub fn upstream_client(&self) -> UpstreamClient {
        UpstreamClient::new(
            &self.config.upstream,
            &self.upstream_key,
            actix_web::web::Data::from(self.metrics.clone()),
        )
    }
}
