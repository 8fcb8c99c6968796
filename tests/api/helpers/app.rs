//! The real `Application` in-process: a fresh database, the simulator as its upstream, served
//! on its own thread and actix runtime.

use super::{sim_log_at, TestDb, ADMIN_PASSWORD, ADMIN_USER, TEST_JWT_SECRET, UPSTREAM_KEY};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use wa_gateway::config::Config;
use wa_gateway::services::quota::Clock;
use wa_gateway::sim::{RunningSim, SimOptions, Simulator};
use wa_gateway::startup::{Application, Overrides};

/// Settings as environment variables: what a test hands the gateway.
pub type Vars = HashMap<String, String>;

/// Settings every test gateway starts from: a fresh database, a real upstream key, small pools.
pub fn base_vars(db: &TestDb, upstream_url: &str) -> Vars {
    [
        ("DATABASE_URL", db.url()),
        ("WAGW_LISTEN", "127.0.0.1:0"),
        ("WAGW_UPSTREAM_URL", upstream_url),
        ("WAGW_UPSTREAM_KEY", UPSTREAM_KEY),
        ("WAGW_UPSTREAM_HOST", wa_gateway::sim::DEFAULT_HOST),
        ("WAGW_ADMIN_USER", ADMIN_USER),
        ("WAGW_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("WAGW_JWT_SECRET", TEST_JWT_SECRET),
        ("WAGW_WORKERS", "2"),
        ("WAGW_DB_MAX_CONNECTIONS", "6"),
        ("WAGW_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("WAGW_SHUTDOWN_TIMEOUT_SECS", "5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub fn config_from(vars: &Vars) -> Config {
    Config::from_lookup(|k| vars.get(k).cloned()).expect("test configuration")
}

/// A gateway built by `Application::build_with`, exactly as `main` builds it, serving on its
/// own thread and actix runtime so that its life does not depend on the test's runtime.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub pool: PgPool,
    pub client: reqwest::Client,
    pub db: Arc<TestDb>,
    pub vars: Vars,
    /// The upstream: a simulator of its own (shared with replicas), unless the test chose none.
    pub sim: Option<Arc<RunningSim>>,
    server: Option<ServerThread>,
    /// The bootstrap admin's access token, logged in for once (argon2id and an audit row).
    pub(super) admin_token: tokio::sync::OnceCell<String>,
}

struct ServerThread {
    handle: actix_web::dev::ServerHandle,
    thread: std::thread::JoinHandle<()>,
}

/// What a test may change before the gateway starts.
pub struct AppOptions {
    pub vars: Vars,
    pub clock: Option<Arc<dyn Clock>>,
    /// The simulator to start as the upstream (its key is the organisation's); `None`: no
    /// simulator, the upstream is whatever `WAGW_UPSTREAM_URL` says (by default unreachable).
    pub sim: Option<SimOptions>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A gateway with settings changed by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Vars)) -> TestApp {
    spawn_app_full(|opts| configure(&mut opts.vars)).await
}

/// A gateway with settings and overrides (the quota clock) changed by `configure`.
pub async fn spawn_app_full(configure: impl FnOnce(&mut AppOptions)) -> TestApp {
    spawn_app_on(TestDb::create().await, configure).await
}

/// A gateway on `db` (a database on a server of the test's own, say), with settings and
/// overrides changed by `configure`.
pub async fn spawn_app_on(db: TestDb, configure: impl FnOnce(&mut AppOptions)) -> TestApp {
    let db = Arc::new(db);
    let mut options = AppOptions {
        // Nothing listens on port 9 (discard): an upstream that is certainly unreachable,
        // replaced by the simulator's address when there is one.
        vars: base_vars(&db, "http://127.0.0.1:9"),
        clock: None,
        sim: Some(SimOptions::default()),
    };
    configure(&mut options);
    let sim = match options.sim.take() {
        Some(mut sim_options) => {
            sim_options.key = Some(UPSTREAM_KEY.to_owned());
            let sim = Simulator::start(sim_options)
                .await
                .expect("starting the simulator");
            options.vars.insert("WAGW_UPSTREAM_URL".into(), sim.url());
            Some(Arc::new(sim))
        }
        None => None,
    };
    start_app(db, options, sim).await
}

/// A second gateway (a replica) on the same database and settings as `other`.
pub async fn spawn_replica(other: &TestApp) -> TestApp {
    spawn_replica_with(other, |_| {}).await
}

/// A replica of `other` (same database and upstream) with settings changed by `configure`.
pub async fn spawn_replica_with(other: &TestApp, configure: impl FnOnce(&mut Vars)) -> TestApp {
    let mut options = AppOptions {
        vars: other.vars.clone(),
        clock: None,
        sim: None,
    };
    configure(&mut options.vars);
    start_app(other.db.clone(), options, other.sim.clone()).await
}

async fn start_app(db: Arc<TestDb>, options: AppOptions, sim: Option<Arc<RunningSim>>) -> TestApp {
    let config = config_from(&options.vars);
    let mut overrides = Overrides::default();
    if let Some(clock) = options.clock {
        overrides.clock = clock;
    }
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            match Application::build_with(config, overrides).await {
                Ok(app) => {
                    let _ = ready_tx.send(Ok((app.port(), app.handle())));
                    if let Err(e) = app.run_until_stopped().await {
                        eprintln!("test gateway stopped with an error: {e:#}");
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
    });
    let (port, handle) = ready_rx
        .await
        .expect("the gateway thread died")
        .unwrap_or_else(|e| panic!("building the gateway: {e:#}"));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        pool: db.pool().await,
        client: http_client(),
        db,
        vars: options.vars,
        sim,
        server: Some(ServerThread { handle, thread }),
        admin_token: tokio::sync::OnceCell::new(),
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// Stops the server gracefully and waits until it released everything.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.handle.stop(true).await;
            let _ = tokio::task::spawn_blocking(move || server.thread.join()).await;
        }
    }

    pub fn sim(&self) -> &RunningSim {
        self.sim
            .as_ref()
            .expect("this test gateway has a simulator")
    }

    pub async fn sim_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.sim().url()))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// How many rows `table` holds (a name from the test itself, never from input).
    pub async fn rows(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The calls the simulator received under `/v1`, oldest first.
    pub async fn sim_log(&self) -> Vec<Value> {
        sim_log_at(&self.sim().url()).await
    }

    pub async fn clear_sim_log(&self) {
        self.client
            .delete(format!("{}/_sim/log", self.sim().url()))
            .send()
            .await
            .unwrap();
    }

    /// Injects a fault (see the simulator's `/_sim/faults`).
    pub async fn sim_fault(&self, fault: Value) {
        let res = self.sim_post("/_sim/faults", fault).await;
        assert!(res.status().is_success(), "adding a fault");
    }

    /// How many calls the simulator received as `method path`.
    pub async fn sim_count(&self, method: &str, path: &str) -> usize {
        self.sim_log()
            .await
            .iter()
            .filter(|e| e["method"] == method && e["path"] == path)
            .count()
    }

    /// A contact (1234567890) messages the simulator's session `upstream`: it fires `message`
    /// and `message.any`. Answers the message.
    pub async fn sim_incoming(&self, upstream: &str, text: &str) -> Value {
        let res = self
            .sim_post(
                &format!("/_sim/sessions/{upstream}/incoming"),
                serde_json::json!({"from": "1234567890", "text": text}),
            )
            .await;
        assert!(res.status().is_success(), "a message to {upstream}");
        res.json().await.unwrap()
    }

    /// The simulator's view of its session `upstream` (status, webhooks, groups, ...).
    pub async fn sim_session(&self, upstream: &str) -> Value {
        let res = self
            .client
            .get(format!("{}/_sim/sessions/{upstream}", self.sim().url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "the simulator has session {upstream}");
        res.json().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // The command is sent at once; the server thread winds down on its own.
            drop(server.handle.stop(false));
        }
    }
}
