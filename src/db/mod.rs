//! The connection pool, migrations, and the embedded PostgreSQL used when no URL is given.

mod change_feed;
pub mod embedded;
pub mod group_commit;
mod pool;
mod readiness;

use crate::config::Config;
use anyhow::Context;
use backon::{ExponentialBuilder, Retryable};
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

pub use change_feed::{ChangeFeed, Signal};
pub use embedded::EmbeddedPostgres;
pub use pool::{Db, DbRuntime};
pub use readiness::{Probe, Readiness, READY_CACHE};

/// Every migration in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long to keep trying a `DATABASE_URL` that does not answer yet (a container starting).
const CONNECT_PATIENCE: Duration = Duration::from_secs(30);

/// The pool, the runtime its connections live on, and the private cluster behind it when we
/// started one.
pub struct Database {
    pub pool: Db,
    runtime: DbRuntime,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts the embedded cluster when it is unset.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let runtime = DbRuntime::start().context("starting the database I/O runtime")?;
        let io = runtime.handle();
        match &config.database_url {
            Some(url) => {
                let options = PgConnectOptions::from_str(url.expose_secret())
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?;
                let pool = connect_with_patience(options, config.db_max_connections, io).await?;
                Ok(Self {
                    pool,
                    runtime,
                    embedded: None,
                })
            }
            None => {
                let data_dir = config.data_dir.clone();
                let bin_dir = config.postgres_bin.clone();
                let cluster = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                    let cluster = EmbeddedPostgres::locate(&data_dir, bin_dir.as_deref())?;
                    cluster.start()?;
                    Ok(cluster)
                })
                .await??;
                let options = cluster.connect_options();
                if let Err(e) = embedded::wait_until_ready(&options, CONNECT_PATIENCE).await {
                    let _ = cluster.stop();
                    return Err(e);
                }
                let pool =
                    match Db::connect(pool_options(config.db_max_connections), options, io).await {
                        Ok(pool) => pool,
                        Err(e) => {
                            let _ = cluster.stop();
                            return Err(e.into());
                        }
                    };
                Ok(Self {
                    pool,
                    runtime,
                    embedded: Some(cluster),
                })
            }
        }
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.acquire().await?;
        MIGRATOR
            .run(&mut *conn)
            .await
            .context("applying migrations")
    }

    /// Closes the pool and its runtime, then stops the embedded cluster if we started one.
    pub async fn shutdown(self) {
        self.pool.close().await;
        drop(self.runtime);
        if let Some(cluster) = self.embedded {
            if let Err(e) = tokio::task::spawn_blocking(move || cluster.stop()).await {
                tracing::error!("stopping the embedded PostgreSQL: {e:#}");
            }
        }
    }
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections.max(2))
        .min_connections(1)
        // A request should fail fast with 503 rather than queue behind a dead database.
        .acquire_timeout(Duration::from_secs(3))
}

async fn connect_with_patience(
    options: PgConnectOptions,
    max_connections: u32,
    io: tokio::runtime::Handle,
) -> anyhow::Result<Db> {
    let started = std::time::Instant::now();
    let attempt = || Db::connect(pool_options(max_connections), options.clone(), io.clone());
    attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(usize::MAX)
                .with_total_delay(Some(CONNECT_PATIENCE)),
        )
        .when(|e| matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)))
        .notify(|e, wait| tracing::warn!("the database is not reachable yet ({e}); retrying in {wait:?}"))
        .await
        .with_context(|| {
            format!(
                "could not reach the database at DATABASE_URL after {}s; is it running and reachable?",
                started.elapsed().as_secs()
            )
        })
}

/// Whether the database answers and every embedded migration has been applied.
pub async fn is_ready(pool: &Db) -> anyhow::Result<()> {
    let applied =
        sqlx::query_scalar!(r#"SELECT count(*) AS "applied!" FROM _sqlx_migrations WHERE success"#)
            .fetch_one(pool)
            .await
            .context("querying the migrations table")?;
    let expected = MIGRATOR.iter().count() as i64;
    anyhow::ensure!(
        applied >= expected,
        "{applied} of {expected} migrations applied"
    );
    Ok(())
}

/// Whether `err` is a violation of the named constraint (unique, check, foreign key), so
/// callers can answer a clean 409 instead of matching on error text.
pub fn constraint_violated(err: &sqlx::Error, constraint: &str) -> bool {
    err.as_database_error()
        .and_then(|e| e.constraint())
        .is_some_and(|c| c == constraint)
}
