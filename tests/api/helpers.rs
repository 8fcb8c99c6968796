//! The test harness: real PostgreSQL, the real application on a loopback port, the real binary
//! as a child process. Nothing is mocked.
//!
//! The PostgreSQL server comes from `WAGW_TEST_DATABASE_URL` (a superuser URL; `scripts/test.sh`
//! starts one), or else a private cluster under `target/` started once from the machine's server
//! binaries and left running between runs. Every test gets a fresh database on it.
#![allow(dead_code)]

use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wa_gateway::config::Config;
use wa_gateway::services::quota::Clock;
use wa_gateway::sim::{RunningSim, SimOptions, Simulator};
use wa_gateway::startup::{Application, Overrides};

/// Settings as environment variables: what a test hands the gateway.
pub type Vars = HashMap<String, String>;

pub const TEST_JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789abcdef";
/// The organisation's upstream key in tests; it must never reach a tenant or a log.
pub const UPSTREAM_KEY: &str = "org-upstream-key-7f3a9c";
/// The admin every test gateway bootstraps (`WAGW_ADMIN_USER` / `WAGW_ADMIN_PASSWORD`).
pub const ADMIN_USER: &str = "root";
pub const ADMIN_PASSWORD: &str = "correct-horse-battery-staple";

// ---- PostgreSQL ------------------------------------------------------------------------------

/// The shared test server's superuser URL.
fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("WAGW_TEST_DATABASE_URL") {
            return url;
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-pg");
        let cluster = wa_gateway::db::EmbeddedPostgres::locate(&dir, None).expect(
            "no WAGW_TEST_DATABASE_URL and no PostgreSQL server binaries: run scripts/test.sh",
        );
        cluster
            .start()
            .expect("starting the test PostgreSQL cluster");
        cluster.url()
    })
}

/// A fresh, empty database on the test server.
pub struct TestDb {
    pub name: String,
    url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let admin = PgConnectOptions::from_str(server_url()).expect("test server URL");
        let mut conn = connect_patiently(&admin).await;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("creating the test database");
        let _ = conn.close().await;
        let url = database_url(server_url(), &name);
        Self { name, url }
    }

    /// `DATABASE_URL` for this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.url)
            .await
            .expect("connecting to the test database")
    }
}

async fn connect_patiently(options: &PgConnectOptions) -> sqlx::PgConnection {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match options.connect().await {
            Ok(conn) => return conn,
            Err(e) if Instant::now() > deadline => {
                panic!("the test PostgreSQL is unreachable: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The server URL with its database path replaced (a socket `host=` query survives).
pub fn database_url(server: &str, database: &str) -> String {
    let mut url = url::Url::parse(server).expect("test server URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

// ---- The application in-process -------------------------------------------------------------

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
    let db = Arc::new(TestDb::create().await);
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
    let options = AppOptions {
        vars: other.vars.clone(),
        clock: None,
        sim: None,
    };
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
}

/// A tenant made through the admin API, with a key of the given scopes.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub id: String,
    pub name: String,
    pub key: String,
}

impl TestApp {
    /// An admin access token (the bootstrap admin of `base_vars`).
    pub async fn admin_token(&self) -> String {
        let res = self
            .client
            .post(self.url("/admin/v1/login"))
            .json(&json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "admin login");
        let body: Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An admin call; answers the status and the JSON body (`Null` when there is none).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self.admin_token().await;
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A tenant created with `tenant` as the body of `POST /admin/v1/tenants` (`name` filled
    /// in when absent), with a key of `scopes`.
    pub async fn tenant_with(&self, mut tenant: Value, scopes: &[&str]) -> TestTenant {
        if tenant.get("name").is_none() {
            tenant["name"] = json!(format!(
                "t{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ));
        }
        let (status, created) = self
            .admin(reqwest::Method::POST, "/admin/v1/tenants", Some(tenant))
            .await;
        assert_eq!(status, 201, "creating a tenant: {created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let (status, key) = self
            .admin(
                reqwest::Method::POST,
                &format!("/admin/v1/tenants/{id}/keys"),
                Some(json!({"name": "test", "scopes": scopes})),
            )
            .await;
        assert_eq!(status, 201, "creating a key: {key}");
        TestTenant {
            id,
            name: created["name"].as_str().unwrap().to_owned(),
            key: key["key"].as_str().unwrap().to_owned(),
        }
    }

    /// A tenant with no limits and a key of every scope.
    pub async fn tenant(&self) -> TestTenant {
        self.tenant_with(json!({"plan": "custom", "quota": {}}), &["*"])
            .await
    }

    /// A request of the tenant's, authenticated with its key.
    pub fn call(
        &self,
        tenant: &TestTenant,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("x-api-key", &tenant.key)
    }

    pub async fn tenant_post(
        &self,
        tenant: &TestTenant,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        self.call(tenant, reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn tenant_get(&self, tenant: &TestTenant, path: &str) -> reqwest::Response {
        self.call(tenant, reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
    }

    /// The upstream's name for the tenant's session.
    pub async fn upstream_name(&self, tenant: &TestTenant, session: &str) -> String {
        sqlx::query_scalar(
            "SELECT upstream_name FROM sessions WHERE tenant_id = $1::uuid AND name = $2",
        )
        .bind(&tenant.id)
        .bind(session)
        .fetch_one(&self.pool)
        .await
        .expect("the tenant owns the session")
    }

    /// Creates the tenant's session `name`, starts it and completes its scan through the
    /// simulator's control API: it is WORKING. Answers its upstream name.
    pub async fn working_session(&self, tenant: &TestTenant, name: &str) -> String {
        let res = self
            .tenant_post(tenant, "/v1/sessions", json!({"name": name}))
            .await;
        assert_eq!(
            res.status(),
            201,
            "creating session {name}: {}",
            res.text().await.unwrap()
        );
        let upstream = self.upstream_name(tenant, name).await;
        let res = self
            .sim_post(&format!("/_sim/sessions/{upstream}/scan"), json!({}))
            .await;
        assert!(res.status().is_success(), "scanning {name}");
        upstream
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

    /// The calls the simulator received under `/v1`, oldest first.
    /// How many rows `table` holds (a name from the test itself, never from input).
    pub async fn rows(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

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
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // The command is sent at once; the server thread winds down on its own.
            drop(server.handle.stop(false));
        }
    }
}

// ---- The binary as a child process -----------------------------------------------------------

/// The real `wa-gateway` binary, its stderr captured to a file.
pub struct GatewayProcess {
    child: Child,
    pub address: String,
    pub port: u16,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_wa-gateway")
}

/// The binary with a clean environment (no settings leak in from the test's shell) plus `vars`.
pub fn command(vars: &Vars) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(vars)
        .stdin(Stdio::null());
    cmd
}

impl GatewayProcess {
    /// Starts `wa-gateway serve` and waits until `/readyz` answers 200.
    pub async fn start(vars: &Vars) -> Self {
        Self::start_args(vars, &["serve"]).await
    }

    pub async fn start_args(vars: &Vars, args: &[&str]) -> Self {
        Self::spawn(vars, |cmd| {
            cmd.args(args);
        })
        .await
    }

    /// Starts the binary as `configure` sets it up, its output in a log of its own, and waits
    /// until `/readyz` answers 200.
    async fn spawn(vars: &Vars, configure: impl FnOnce(&mut Command)) -> Self {
        let log_dir = tempfile::tempdir().unwrap();
        let log_path = log_dir.path().join("gateway.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = command(vars);
        configure(&mut cmd);
        let child = cmd
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting the wa-gateway binary");
        let mut process = Self {
            child,
            address: String::new(),
            port: 0,
            log_path,
            _log_dir: log_dir,
        };
        process.port = process.wait_for_port().await;
        process.address = format!("http://127.0.0.1:{}", process.port);
        process.wait_ready(Duration::from_secs(60)).await;
        process
    }

    /// The port from the start-up line `listening on http://IP:PORT`.
    async fn wait_for_port(&mut self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let logs = self.logs();
            if let Some(rest) = logs.split("listening on http://").nth(1) {
                let port = rest
                    .split(|c: char| !c.is_ascii_digit() && c != '.' && c != ':')
                    .next()
                    .and_then(|addr| addr.rsplit(':').next())
                    .and_then(|p| p.parse().ok());
                if let Some(port) = port {
                    return port;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("wa-gateway exited with {status} before listening:\n{logs}");
            }
            assert!(
                Instant::now() < deadline,
                "wa-gateway did not start listening:\n{logs}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_ready(&mut self, patience: Duration) {
        let client = http_client();
        let deadline = Instant::now() + patience;
        loop {
            let ok = client
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("wa-gateway exited with {status}:\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "wa-gateway never became ready:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Everything the process wrote so far (stdout and stderr).
    pub fn logs(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal)
            .expect("signalling wa-gateway");
    }

    /// SIGTERM, then waits for the exit (bounded).
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(60)).await
    }

    /// SIGKILL: no clean-up at all.
    pub async fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn wait_exit(&mut self, patience: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for wa-gateway") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wa-gateway did not exit:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A temporary directory the `postgres` user can traverse (for embedded clusters when root).
pub fn shared_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("wagw-test-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Never hand a secret to `Debug`.
pub fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// Polls `check` until it holds or `patience` runs out; returns whether it held.
/// The calls a simulator at `sim_url` received under `/v1`, oldest first; on a fresh
/// connection (a pooled one may have idled out while a test waited).
pub async fn sim_log_at(sim_url: &str) -> Vec<Value> {
    http_client()
        .get(format!("{sim_url}/_sim/log"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn eventually<F, Fut>(patience: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + patience;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- edge helpers

impl GatewayProcess {
    /// Starts `wa-gateway serve` with its soft open-file limit lowered to `soft` (the hard limit
    /// unchanged), as systemd and many shells hand a service 1024.
    pub async fn start_with_soft_nofile(vars: &Vars, soft: u64) -> Self {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        use std::os::unix::process::CommandExt;
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("reading RLIMIT_NOFILE");
        Self::spawn(vars, |cmd| {
            cmd.arg("serve");
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard).map_err(Into::into)
                });
            }
        })
        .await
    }

    /// The resident set size of the process, in KiB (`VmRSS` of /proc/<pid>/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }
}
