//! Building the application: the one wiring used by `main` and by every test.

use crate::config::Config;
use crate::db::Database;
use crate::http::error::shape_plain_errors;
use crate::http::state::AppState;
use crate::http::tenant::ProxyState;
use crate::http::{admin, body, edge, listener, openapi, ops, routes};
use crate::metrics::Metrics;
use crate::services::auth;
use crate::services::auth::Auth;
use crate::services::quota::{Clock, Quotas, SystemClock};
use crate::services::sessions::SessionStore;
use crate::services::upstream::UpstreamClient;
use crate::services::webhooks::{self, DeliveryWorkers, Relay};
use crate::sim::{RunningSim, SimOptions, Simulator};
use crate::telemetry;
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// What tests may replace; `main` uses the defaults.
pub struct Overrides {
    /// The clock quotas are counted in (a test crosses a month boundary with it).
    pub clock: Arc<dyn Clock>,
}

impl Default for Overrides {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
        }
    }
}

/// A built gateway: bound to its port, not yet serving.
pub struct Application {
    port: u16,
    server: Server,
    database: Database,
    quotas: Arc<Quotas>,
    background: Vec<JoinHandle<()>>,
    webhook_workers: DeliveryWorkers,
    /// Sandbox mode: the in-process simulator serving as the upstream.
    sandbox: Option<RunningSim>,
}

/// Everything built on the database, before the server exists.
struct Parts {
    port: u16,
    server: Server,
    quotas: Arc<Quotas>,
    background: Vec<JoinHandle<()>>,
    webhook_workers: DeliveryWorkers,
}

impl Application {
    /// Connects the database (or starts the embedded one), migrates, binds and wires the app.
    /// With `WAGW_LISTEN` on port 0 the OS picks a free port; `port()` tells which.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Overrides::default()).await
    }

    pub async fn build_with(mut config: Config, overrides: Overrides) -> anyhow::Result<Self> {
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        listener::raise_open_file_limit(config.http.max_connections);
        let sandbox = if config.sandbox() {
            Some(start_sandbox(&mut config).await?)
        } else {
            None
        };
        let database = match Database::connect(&config).await {
            Ok(database) => database,
            Err(e) => {
                if let Some(sim) = sandbox {
                    sim.stop().await;
                }
                return Err(e);
            }
        };
        let sandbox_key = sandbox
            .as_ref()
            .and_then(|sim| sim.key())
            .map(|k| secrecy::SecretString::from(k.to_owned()));
        match Self::wire(config, overrides, &database, sandbox_key).await {
            Ok(parts) => Ok(Self {
                port: parts.port,
                server: parts.server,
                database,
                quotas: parts.quotas,
                background: parts.background,
                webhook_workers: parts.webhook_workers,
                sandbox,
            }),
            Err(e) => {
                database.shutdown().await;
                if let Some(sim) = sandbox {
                    sim.stop().await;
                }
                Err(e)
            }
        }
    }

    async fn wire(
        config: Config,
        overrides: Overrides,
        database: &Database,
        sandbox_key: Option<secrecy::SecretString>,
    ) -> anyhow::Result<Parts> {
        database.migrate().await?;
        let listener = listener::bind_listener(config.listen, config.http.backlog)
            .map_err(|e| anyhow::anyhow!("binding WAGW_LISTEN={}: {e}", config.listen))?;
        let port = listener.local_addr()?.port();

        // Shared state is built once, outside the worker factory, and cloned into each worker.
        let pool = database.pool.clone();
        let metrics = web::Data::new(Metrics::new());
        let quotas = Arc::new(Quotas::new(pool.clone(), &config.quota, overrides.clock).await?);
        let proxy = web::Data::new(ProxyState::new(
            pool.clone(),
            SessionStore::new(pool.clone()),
            quotas.clone(),
            config.upstream.check_exists_ttl,
            config.upstream.request_timeout,
        ));
        let upstream_key = config
            .upstream
            .key
            .clone()
            .or(sandbox_key)
            .unwrap_or_else(|| secrecy::SecretString::from("sandbox"));
        auth::bootstrap::ensure_first_admin(&pool, &config).await?;
        let auth = Arc::new(Auth::new(pool.clone(), &config.admin).await?);
        let background = vec![
            quotas.spawn_flusher(),
            auth.spawn_listener(),
            auth.spawn_failure_purge(),
            proxy.sessions.spawn_listener(),
        ];
        let auth = web::Data::from(auth);
        let public_base = webhook_public_base(&config, port);
        let wake = Arc::new(tokio::sync::Notify::new());
        let relay = web::Data::new(Relay {
            public_base: public_base.clone(),
            allow_private: config.webhooks.allow_private,
            wake: wake.clone(),
            tokens: Default::default(),
        });
        let worker_settings = webhooks::delivery::WorkerSettings {
            db: pool.clone(),
            metrics: metrics.clone(),
            webhooks: config.webhooks.clone(),
            upstream: config.upstream.clone(),
            upstream_key: upstream_key.clone(),
            quotas: quotas.clone(),
            public_base,
            wake,
        };

        let config = Arc::new(config);
        let shared_config = web::Data::from(config.clone());
        let pool_data = web::Data::new(pool);
        let readiness = web::Data::new(ops::Readiness::new());
        let (shutdown_timeout, http) = (config.shutdown_timeout, config.http.clone());
        let workers = listener::worker_count(&config);
        listener::log_connection_limits(&http, workers);
        let shared = Shared {
            config: config.clone(),
            db: pool_data.get_ref().clone(),
            auth: auth.clone().into_inner(),
            quotas: quotas.clone(),
            sessions: proxy.sessions.clone(),
            proxy: proxy.clone().into_inner(),
            relay: relay.clone().into_inner(),
            metrics: metrics.clone().into_inner(),
            readiness: readiness.clone().into_inner(),
        };
        let server = HttpServer::new(move || {
            // awc clients are per worker: they cannot cross threads.
            let client = UpstreamClient::new(&config.upstream, &upstream_key, metrics.clone());
            let state = web::Data::new(shared.for_worker(UpstreamClient::new(
                &config.upstream,
                &upstream_key,
                metrics.clone(),
            )));
            // The last `wrap` runs first: the edge refuses before anything else looks.
            App::new()
                .wrap(ErrorHandlers::new().default_handler(shape_plain_errors))
                .wrap(from_fn(body::deadline))
                .wrap(from_fn(telemetry::request_context))
                .wrap(from_fn(edge::refuse_at_the_edge))
                .configure(|cfg| edge::request_limits(cfg, config.http.body_timeout))
                .app_data(state)
                .app_data(pool_data.clone())
                .app_data(metrics.clone())
                .app_data(shared_config.clone())
                .app_data(proxy.clone())
                .app_data(web::Data::new(client))
                .app_data(auth.clone())
                .app_data(relay.clone())
                .app_data(readiness.clone())
                // Routes are tried in order: the forwarded rows, the hot path, come first. The
                // webhook routes precede them so /v1/sessions/{session}/webhooks/... resolve
                // here; no forwarded pattern overlaps the routes after them.
                .configure(crate::http::tenant::webhooks::routes)
                .configure(routes::routes)
                .configure(admin::routes)
                .configure(admin::sessions::routes)
                .configure(ops::routes)
                .configure(openapi::routes)
                .default_service(web::to(edge::unknown_route))
        })
        // See `log_connection_limits`; actix counts connections per worker.
        .workers(workers)
        .max_connections(http.max_connections.div_ceil(workers))
        .keep_alive(listener::keep_alive(&http))
        .client_request_timeout(http.request_head_timeout)
        .client_disconnect_timeout(http.disconnect_timeout)
        .listen(listener)?
        .shutdown_timeout(shutdown_timeout.as_secs());
        // Started last: nothing after it can fail and leave the thread running.
        let webhook_workers = DeliveryWorkers::start(worker_settings)?;
        Ok(Parts {
            port,
            server: server.run(),
            quotas,
            background,
            webhook_workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully (tests; signals are handled by actix itself).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM or `handle().stop()`, lets in-flight requests finish
    /// (bounded by `WAGW_SHUTDOWN_TIMEOUT_SECS`), then writes usage, hands back unspent quota
    /// leases, closes the pool and stops the embedded PostgreSQL.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        tracing::info!("HTTP server stopped; releasing resources");
        for task in &self.background {
            task.abort();
        }
        self.webhook_workers.stop().await;
        self.quotas.shutdown().await;
        self.database.shutdown().await;
        if let Some(sim) = self.sandbox {
            sim.stop().await;
        }
        served.map_err(Into::into)
    }
}

/// The origin the upstream posts events to: `WAGW_PUBLIC_URL`, else the address we listen on
/// (with the real port, and loopback for an unspecified address).
fn webhook_public_base(config: &Config, port: u16) -> String {
    match &config.public_url {
        Some(url) => url.as_str().trim_end_matches('/').to_owned(),
        None => {
            let ip = match config.listen.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
                ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
                ip => ip,
            };
            format!("http://{}", std::net::SocketAddr::new(ip, port))
        }
    }
}

/// Sandbox mode (no `WAGW_UPSTREAM_KEY`): the simulator, in-process on a private loopback
/// port with a random key and auto-scan, becomes the upstream.
async fn start_sandbox(config: &mut Config) -> anyhow::Result<RunningSim> {
    let key = uuid::Uuid::new_v4().simple().to_string();
    let sim = Simulator::start(SimOptions {
        key: Some(key),
        host: config.upstream.host.clone(),
        auto_scan: Some(std::time::Duration::from_secs(3)),
        ..SimOptions::default()
    })
    .await?;
    config.upstream.url = sim.url().parse()?;
    tracing::warn!(
        upstream = %config.upstream.url,
        "SANDBOX MODE: no WAGW_UPSTREAM_KEY, so the built-in simulator is the upstream; \
         nothing reaches WhatsApp (sessions scan themselves 3 s after their QR code is fetched)"
    );
    Ok(sim)
}

/// The services every worker's `AppState` shares.
#[derive(Clone)]
struct Shared {
    config: Arc<Config>,
    db: crate::db::Db,
    auth: Arc<Auth>,
    quotas: Arc<Quotas>,
    sessions: SessionStore,
    proxy: Arc<ProxyState>,
    relay: Arc<Relay>,
    metrics: Arc<Metrics>,
    readiness: Arc<ops::Readiness>,
}

impl Shared {
    fn for_worker(&self, upstream: UpstreamClient) -> AppState {
        AppState {
            config: self.config.clone(),
            db: self.db.clone(),
            auth: self.auth.clone(),
            quotas: self.quotas.clone(),
            sessions: self.sessions.clone(),
            proxy: self.proxy.clone(),
            relay: self.relay.clone(),
            metrics: self.metrics.clone(),
            readiness: self.readiness.clone(),
            upstream,
        }
    }
}
