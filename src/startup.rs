//! Building the application: the one wiring used by `main` and by every test.

use crate::config::Config;
use crate::db::Database;
use crate::http::listener;
use crate::http::state::{AppState, SharedState};
use crate::services::auth;
use crate::services::jobs::Jobs;
use crate::services::quota::{Clock, Quotas, SystemClock};
use crate::services::upstream::TestUpstream;
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
    /// The in-process simulator that serves test keys, in every mode.
    test_sim: RunningSim,
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
        let test_sim = match Simulator::start(simulator_options(&config)).await {
            Ok(sim) => sim,
            Err(e) => {
                stop_sims(sandbox, None).await;
                return Err(e);
            }
        };
        let database = match Database::connect(&config).await {
            Ok(database) => database,
            Err(e) => {
                stop_sims(sandbox, Some(test_sim)).await;
                return Err(e);
            }
        };
        let sandbox_key = sandbox
            .as_ref()
            .and_then(|sim| sim.key())
            .map(|k| secrecy::SecretString::from(k.to_owned()));
        let test_upstream = test_target(&config, &test_sim);
        match Self::wire(config, overrides, &database, sandbox_key, test_upstream).await {
            Ok(parts) => Ok(Self {
                port: parts.port,
                server: parts.server,
                database,
                quotas: parts.quotas,
                jobs: parts.jobs,
                webhook_workers: parts.webhook_workers,
                sandbox,
                test_sim,
            }),
            Err(e) => {
                database.shutdown().await;
                stop_sims(sandbox, Some(test_sim)).await;
                Err(e)
            }
        }
    }

    async fn wire(
        config: Config,
        overrides: Overrides,
        database: &Database,
        sandbox_key: Option<secrecy::SecretString>,
        test_upstream: TestUpstream,
    ) -> anyhow::Result<Parts> {
        database.migrate().await?;
        let listener = listener::bind_listener(config.listen, config.http.backlog)
            .map_err(|e| anyhow::anyhow!("binding WAGW_LISTEN={}: {e}", config.listen))?;
        let port = listener.local_addr()?.port();
        let pool = database.pool.clone();
        auth::bootstrap::ensure_first_admin(&pool, &config).await?;
        let public_base = webhook_public_base(&config, port);
        let state = AppState::build(
            config,
            pool,
            overrides.clock,
            public_base,
            sandbox_key,
            test_upstream,
        )
        .await?;
        let mut jobs = Jobs::start(
            &state.db,
            &state.quotas,
            &state.auth,
            &state.feed,
            &state.events,
        );
        webhooks::upkeep::schedule(
            &mut jobs,
            &state.db,
            &state.config.webhooks,
            state.config.events.retention,
            &state.metrics,
        );
        close_streams_on_signal(state.events.clone());
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
        stop_sims(self.sandbox, Some(self.test_sim)).await;
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

/// The in-process simulator of sandbox mode and of test keys: a private loopback port, a key
/// random per process (never shown nor logged), and sessions that scan themselves 3 s after
/// their QR code is fetched.
fn simulator_options(config: &Config) -> SimOptions {
    SimOptions {
        key: Some(uuid::Uuid::new_v4().simple().to_string()),
        host: config.upstream.host.clone(),
        auto_scan: Some(std::time::Duration::from_secs(3)),
        ..SimOptions::default()
    }
}

/// Where test keys' calls go: `sim`, with the upstream's timeouts and retries.
fn test_target(config: &Config, sim: &RunningSim) -> TestUpstream {
    let key = sim.key().expect("the test simulator has a key").to_owned();
    let mut upstream = config.upstream.clone();
    upstream.url = sim.url().parse().expect("a loopback URL parses");
    upstream.key = Some(secrecy::SecretString::from(key.clone()));
    TestUpstream {
        config: upstream,
        key: secrecy::SecretString::from(key),
    }
}

async fn stop_sims(sandbox: Option<RunningSim>, test_sim: Option<RunningSim>) {
    for sim in sandbox.into_iter().chain(test_sim) {
        sim.stop().await;
    }
}

/// Sandbox mode (no `WAGW_UPSTREAM_KEY`): the simulator, in-process on a private loopback
/// port with a random key and auto-scan, becomes the upstream.
async fn start_sandbox(config: &mut Config) -> anyhow::Result<RunningSim> {
    let sim = Simulator::start(simulator_options(config)).await?;
    config.upstream.url = sim.url().parse()?;
    tracing::warn!(
        upstream = %config.upstream.url,
        "SANDBOX MODE: no WAGW_UPSTREAM_KEY, so the built-in simulator is the upstream; \
         nothing reaches WhatsApp (sessions scan themselves 3 s after their QR code is fetched)"
    );
    Ok(sim)
}

/// Ends the event streams as soon as a shutdown signal comes: actix then lets requests in
/// flight finish, and a stream, which never finishes by itself, would hold the replica up for
/// all of `WAGW_SHUTDOWN_TIMEOUT_SECS`.
fn close_streams_on_signal(hub: Arc<crate::services::events::Hub>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("no signal handler: event streams end only with the shutdown timeout");
        return;
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        hub.close();
    });
}

/// The server over `listener`, each worker serving `http::app`.
fn serve(listener: TcpListener, state: SharedState) -> anyhow::Result<Server> {
    let config = state.config.clone();
    let http = config.http.clone();
    let workers = crate::config::worker_count(config.workers);
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
        test_upstream: state.test_upstream.clone(),
        quotas: state.quotas.clone(),
        relay: state.relay.clone(),
        outbox_changed: state.outbox_changed.clone(),
    }
}
