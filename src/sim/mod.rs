//! The upstream simulator: the hosted WhatsApp Messaging REST API, faithfully, on this machine.
//!
//! It follows the seed document first and docs/UPSTREAM.md (the engine's behaviour) second, and shares no
//! code with the gateway's forwarding path (`crate::http::routes`), so the gateway's tests measure
//! the gateway against an independent reading of the API. It serves `wa-gateway sim`, the
//! sandbox upstream of `serve` without a key, and every test that needs an upstream.
//!
//! - `/v1/...`: every endpoint of the seed, stateful per session (`api`), behind the plan
//!   checks of the hosted API (key and host, per-second rate, monthly quota) and the log.
//! - `/_sim/...`: the control API for tests and demos (`control`).

mod api;
mod body;
mod chat;
mod control;
mod delivery;
mod error;
mod faults;
mod lifecycle;
mod log;
mod options;
mod plan;
mod qr;
mod registration;
mod routing;
mod state;
mod webhooks;

pub use delivery::sign as webhook_signature;
pub use options::{SimOptions, DEFAULT_HOST, ENGINE_STATUS_WAIT};

use crate::http::error::{shape_plain_errors, ApiError};
use actix_web::dev::ServerHandle;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use delivery::Outbox;
use state::SimState;
use std::sync::Arc;

pub struct Simulator;

impl Simulator {
    /// Binds `opts.listen` and serves on the current tokio runtime (a plain `#[tokio::test]`,
    /// the gateway's runtime, or the CLI's). Webhooks leave from a thread of their own.
    pub async fn start(options: SimOptions) -> anyhow::Result<RunningSim> {
        let listener = std::net::TcpListener::bind(options.listen)
            .map_err(|e| anyhow::anyhow!("simulator: binding {}: {e}", options.listen))?;
        let address = listener.local_addr()?;
        let workers = options.workers.max(1);
        let (outbox, delivery) = Outbox::start()?;
        let state = Arc::new(SimState::new(options, outbox));
        let data = web::Data::from(state.clone());
        let server =
            HttpServer::new(move || {
                App::new()
                    .wrap(ErrorHandlers::new().default_handler(shape_plain_errors))
                    .app_data(data.clone())
                    .app_data(web::PayloadConfig::new(plan::MAX_BODY))
                    .app_data(web::PathConfig::default().error_handler(|e, _| {
                        ApiError::not_found(format!("not found: {e}")).into()
                    }))
                    .configure(control::routes)
                    .service(
                        web::scope("/v1")
                            .wrap(from_fn(plan::plan_and_log))
                            .configure(api::routes)
                            .default_service(web::to(api::unknown_route)),
                    )
                    .default_service(web::to(api::unknown_route))
            })
            .on_connect(plan::remember_socket)
            .workers(workers)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)?
            .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(RunningSim {
            port: address.port(),
            handle,
            task,
            state,
            delivery: Some(delivery),
        })
    }
}

pub struct RunningSim {
    port: u16,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    state: Arc<SimState>,
    delivery: Option<std::thread::JoinHandle<()>>,
}

impl RunningSim {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` (no `/v1`): the gateway's `WAGW_UPSTREAM_URL`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn key(&self) -> Option<&str> {
        self.state.options.key.as_deref()
    }

    pub fn host(&self) -> &str {
        &self.state.options.host
    }

    /// Stops serving and drops pending webhook retries (they live in memory, as upstream).
    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        let _ = (&mut self.task).await;
        self.state.outbox.close();
        if let Some(thread) = self.delivery.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
