//! A fresh database per test on the shared PostgreSQL test server.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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
    /// The superuser URL of the server it lives on (where it is dropped from).
    server: String,
}

impl TestDb {
    pub async fn create() -> Self {
        Self::create_on(server_url()).await
    }

    /// A fresh database on the server at `server` (a superuser URL).
    pub async fn create_on(server: &str) -> Self {
        let admin = PgConnectOptions::from_str(server).expect("test server URL");
        let mut conn = connect_patiently(&admin).await;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("creating the test database");
        let _ = conn.close().await;
        let url = database_url(server, &name);
        Self {
            name,
            url,
            server: server.to_owned(),
        }
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
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await, // poll
        }
    }
}

/// A test's database is dropped when its last owner lets go of it (a `TestApp` and its replicas
/// share one through an `Arc`; a test that outlives its app keeps a clone). A suite leaves ~260
/// databases behind otherwise (about 2 GB, and more on a shared server run after run), and a test
/// PostgreSQL that runs out of disk dies in the middle of the suite (a WAL write PANICs), which
/// fails every test after it with nothing saying why.
impl Drop for TestDb {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let server = self.server.clone();
        // Its own thread and runtime: a drop may run on a test's runtime, which cannot block
        // on another future. A failed drop leaves a database behind, nothing worse.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = PgConnectOptions::from_str(&server).ok()?;
                let mut conn = admin.connect().await.ok()?;
                sqlx::query(&statement).execute(&mut conn).await.ok()?;
                conn.close().await.ok()
            })
        });
        let _ = dropped.join();
    }
}

/// The server URL with its database path replaced (a socket `host=` query survives).
pub fn database_url(server: &str, database: &str) -> String {
    let mut url = url::Url::parse(server).expect("test server URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// A PostgreSQL cluster of the test's own, in a temporary directory, for what must not happen
/// to the shared server (a restart); stopped and removed when dropped. Durable as a
/// production server is (fsync on).
pub struct OwnPostgres {
    cluster: std::sync::Arc<wa_gateway::db::EmbeddedPostgres>,
    _dir: tempfile::TempDir,
}

impl OwnPostgres {
    pub async fn start() -> Self {
        let dir = super::shared_tempdir();
        let cluster = wa_gateway::db::EmbeddedPostgres::locate(dir.path(), None)
            .expect("PostgreSQL server binaries for a cluster of the test's own");
        let own = Self {
            cluster: std::sync::Arc::new(cluster),
            _dir: dir,
        };
        own.start_again().await;
        own
    }

    /// The superuser URL (over the cluster's private socket).
    pub fn url(&self) -> String {
        self.cluster.url()
    }

    /// Fast shutdown, as an operator's restart begins: sessions are ended, the socket goes.
    pub async fn stop(&self) {
        let cluster = self.cluster.clone();
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .unwrap()
            .expect("stopping the test's own PostgreSQL");
    }

    /// Starts the cluster (again); `pg_ctl -w` returns once it accepts connections.
    pub async fn start_again(&self) {
        let cluster = self.cluster.clone();
        tokio::task::spawn_blocking(move || cluster.start())
            .await
            .unwrap()
            .expect("starting the test's own PostgreSQL");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.cluster.stop();
    }
}
