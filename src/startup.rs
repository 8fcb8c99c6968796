//! Building the application: the one wiring used by `main` and by every test.

use crate::config::Config;
use crate::db::Database;
use crate::http::listener;
use crate::http::state::{AppState, SharedState};
use crate::services::auth;
use crate::services::jobs::Jobs;
use crate::services::quota::{Clock, Quotas, SystemClock};
use crate::services::webhooks::{self, DeliveryWorkers};
use crate::sim::{RunningSim, SimOptions, Simulator};
use actix_web::dev::{Server, ServerHandle};
use actix_web::HttpServer;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// How long the background jobs get to finish their round at shutdown.
const JOBS_STOP_BOUND: Duration = Duration::from_secs(5);

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
    jobs: Jobs,
    webhook_workers: DeliveryWorkers,
    /// Sandbox mode: the in-process simulator serving as the upstream.
    sandbox: Option<RunningSim>,
}

/// Everything built on the database, before the server exists.
struct Parts {
    port: u16,
    server: Server,
    quotas: Arc<Quotas>,
    jobs: Jobs,
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
                jobs: parts.jobs,
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
        let pool = database.pool.clone();
        auth::bootstrap::ensure_first_admin(&pool, &config).await?;
        let public_base = webhook_public_base(&config, port);
        let state =
            AppState::build(config, pool, overrides.clock, public_base, sandbox_key).await?;
        let jobs = Jobs::start(&state.db, &state.quotas, &state.auth, &state.feed);
        let server = match serve(listener, state.clone()) {
            Ok(server) => server,
            Err(e) => {
                jobs.stop(JOBS_STOP_BOUND).await;
                return Err(e);
            }
        };
        // Started last: nothing after it can fail and leave the thread running.
        let webhook_workers = match DeliveryWorkers::start(delivery_settings(&state)) {
            Ok(workers) => workers,
            Err(e) => {
                server.handle().stop(false).await;
                jobs.stop(JOBS_STOP_BOUND).await;
                return Err(e);
            }
        };
        Ok(Parts {
            port,
            server,
            quotas: state.quotas.clone(),
            jobs,
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
        self.jobs.stop(JOBS_STOP_BOUND).await;
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

/// The server over `listener`, each worker serving `http::app`.
fn serve(listener: TcpListener, state: SharedState) -> anyhow::Result<Server> {
    let config = state.config.clone();
    let http = config.http.clone();
    let workers = listener::worker_count(&config);
    listener::log_connection_limits(&http, workers);
    let server = HttpServer::new(move || crate::http::app(&state))
        // See `log_connection_limits`; actix counts connections per worker.
        .workers(workers)
        .max_connections(http.max_connections.div_ceil(workers))
        .keep_alive(listener::keep_alive(&http))
        .client_request_timeout(http.request_head_timeout)
        .client_disconnect_timeout(http.disconnect_timeout)
        .listen(listener)?
        .shutdown_timeout(config.shutdown_timeout.as_secs());
    Ok(server.run())
}

/// What the webhook delivery thread needs, from the shared services.
fn delivery_settings(state: &SharedState) -> webhooks::delivery::WorkerSettings {
    let config = &state.config;
    webhooks::delivery::WorkerSettings {
        db: state.db.clone(),
        metrics: actix_web::web::Data::from(state.metrics.clone()),
        webhooks: config.webhooks.clone(),
        upstream: config.upstream.clone(),
        upstream_key: state.upstream_key.clone(),
        quotas: state.quotas.clone(),
        relay: state.relay.clone(),
        outbox_changed: state.outbox_changed.clone(),
    }
}
